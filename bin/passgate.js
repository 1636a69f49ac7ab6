#!/usr/bin/env -S node --max-semi-space-size=2
// The installed CLI runs the compiled code in dist/ (built by `npm ci` through the prepare script).
//
// --max-semi-space-size=2 bounds V8's young generation at 2 MiB per semi-space. passgate streams messages in
// short-lived chunks; with V8's default (up to 16 MiB) the young generation alone grows RSS by ~35 MB while a
// 50 MB message passes, though nothing is retained (test/integration/smtp-gateway-load.test.ts measures it).
import '../dist/cli.js';
