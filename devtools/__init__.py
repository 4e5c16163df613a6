"""Development tools outside the runtime package: the local Bitrix24 simulator (`devportal`)
and the demo (`bin/demo`). Production never imports this package."""
