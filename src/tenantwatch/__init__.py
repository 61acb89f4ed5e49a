"""tenantwatch."""
