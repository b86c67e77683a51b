"""The function against moto in this process, and the Pulumi program under Pulumi's mocks."""
