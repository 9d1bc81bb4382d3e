"""One callable per operation. HTTP, CLI and the runner callbacks all call these."""
