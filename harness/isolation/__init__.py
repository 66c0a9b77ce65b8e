"""Process isolation: the runner master and sessions (client side), the extra Python
environments of frameworks that cannot share the main one, and the probe that checks them."""
