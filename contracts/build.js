// Compiles the contracts with the pinned solc-js (package-lock.json) into PoolTreasury.json, the
// artefact the C# side embeds. `node build.js --check` recompiles and fails when the committed
// artefact differs from the source (the build and the tests run it).
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const sources = ['PoolTreasury.sol', 'TestStablecoin.sol'];
const input = {
  language: 'Solidity',
  sources: Object.fromEntries(sources.map(f => [f, { content: fs.readFileSync(path.join(__dirname, f), 'utf8') }])),
  settings: {
    optimizer: { enabled: true, runs: 10000 },
    viaIR: true,
    evmVersion: 'prague',
    metadata: { bytecodeHash: 'none' },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
// Warnings fail the build too, as -warnaserror does for the C# side.
const errors = (output.errors || []).filter(e => e.severity === 'error' || e.severity === 'warning');
for (const e of output.errors || []) process.stderr.write(e.formattedMessage + '\n');
if (errors.length) process.exit(1);

const artefact = { compiler: 'solc-js ' + solc.version(), settings: input.settings, contracts: {} };
for (const file of sources) {
  for (const [name, c] of Object.entries(output.contracts[file])) {
    if (!c.evm.bytecode.object) continue; // interfaces
    artefact.contracts[name] = { source: file, abi: c.abi, bytecode: '0x' + c.evm.bytecode.object };
  }
}
const text = JSON.stringify(artefact, null, 2) + '\n';
const target = path.join(__dirname, 'PoolTreasury.json');
if (process.argv.includes('--check')) {
  const committed = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
  if (committed !== text) {
    process.stderr.write('contracts/PoolTreasury.json does not match the Solidity source: run `npm run build` in contracts/\n');
    process.exit(1);
  }
  process.stdout.write('contracts/PoolTreasury.json matches the source (' + solc.version() + ')\n');
} else {
  fs.writeFileSync(target, text);
  process.stdout.write('wrote contracts/PoolTreasury.json (' + solc.version() + ')\n');
}
