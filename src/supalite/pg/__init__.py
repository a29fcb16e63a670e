"""The admin SQL path (`/pg`): service_role only; what the MCP server's database tools use."""
