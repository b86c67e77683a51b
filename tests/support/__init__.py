"""What several test files share: generated images, Pulumi's mocks, AWS fixtures."""
