"""The domain: pure functions and types (keyword rules, the consent decider, fuzzy matching,
presets, text normalisation, phone numbers, SMS parts, impact, the credential model). It imports
nothing of ours; storage, the engine and both front ends build on it."""
