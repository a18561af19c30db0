"""Side effects: model calls (providers/) and tool execution. Imported by workers, never by workflow code."""
