// Decode the QR code in a raw RGBA image with jsQR (the copy the pages serve), for the
// poster's tests: an independent reader of what was drawn, not segno reading its own matrix.
// Usage: node decode_qr.js JSQR_PATH RGBA_FILE WIDTH HEIGHT; prints the decoded text as JSON.
"use strict";
const fs = require("fs");
const [jsqrPath, file, width, height] = process.argv.slice(2);
const jsQR = require(jsqrPath);
const data = new Uint8ClampedArray(fs.readFileSync(file));
const found = jsQR(data, Number(width), Number(height), { inversionAttempts: "dontInvert" });
process.stdout.write(JSON.stringify(found ? found.data : null));
