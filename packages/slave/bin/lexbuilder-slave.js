#!/usr/bin/env node
// The installed command: runs the compiled daemon (npm ci's prepare script runs `tsc -b`).
import "../dist/main.js";
