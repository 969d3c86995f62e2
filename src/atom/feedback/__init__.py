"""Feedback on what agents did (thumbs, ratings, corrections, comments) and A/B tests of agent variants."""
