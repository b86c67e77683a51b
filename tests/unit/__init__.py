"""Fast tests of pure pieces: no AWS, no Pulumi engine, no servers."""
