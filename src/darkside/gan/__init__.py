"""Day->night generators: the Translator interface, its registry and the generator families."""
