"""Pure selling domain: carts and the offline authorization rules. No I/O, no Qt."""
