"""OwnLens: analytics for digital publishers."""
