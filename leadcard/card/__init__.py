"""card: a lead and its reference data → the card's view-model, localized; rendered-card
reuse. Pure: no network, no database. Imports only core."""
