// Validate glTF/GLB files with the Khronos glTF-Validator; prints one JSON line per file.
import { readFileSync } from "node:fs";
import validator from "gltf-validator";

for (const path of process.argv.slice(2)) {
  const data = new Uint8Array(readFileSync(path));
  const report = await validator.validateBytes(data, { maxIssues: 50 });
  const issues = report.issues;
  console.log(JSON.stringify({
    path,
    errors: issues.numErrors,
    warnings: issues.numWarnings,
    messages: issues.messages.filter((m) => m.severity <= 1).map((m) => `${m.code}: ${m.message} (${m.pointer ?? ""})`),
  }));
}
