"""The consumer-driven contract suite: what iAdvize needs from any external bot, as Pact files."""
