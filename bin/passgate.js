#!/usr/bin/env node
// The installed CLI runs the compiled code in dist/ (built by `npm ci` through the prepare script).
import '../dist/cli.js';
