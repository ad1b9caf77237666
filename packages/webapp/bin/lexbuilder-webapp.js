#!/usr/bin/env node
// The lexbuilder-webapp command: runs the compiled web console.
import "../dist/main.js";
