"""The service-intent catalog: query → query' matching of an app's services."""
