"""Speed measured side by side: the harness against a plain reference loop, and the GPU check."""
