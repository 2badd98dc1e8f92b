"""The OpenRouter side: answers, answer streaming, retry policy, key pool, model catalog."""
