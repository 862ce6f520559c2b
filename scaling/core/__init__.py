"""The torch-free contract both sides share: run records, family rules and exact counts, FLOP conventions,
schedules, power-law and Chinchilla closed forms, the IsoFLOP minimum."""
