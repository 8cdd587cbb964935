"""What a person reads at a terminal: escaped text, step cards, gates, the live clock."""
