"""The deployable image function. Never imports pulumi."""
