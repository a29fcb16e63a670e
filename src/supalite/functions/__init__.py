"""Functions (`/functions/v1/<name>`): Python and TypeScript functions in worker processes."""
