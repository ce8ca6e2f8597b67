// Validates Kubernetes objects (multi-document YAML on stdin, as `kubectl kustomize` renders
// them) against the Kubernetes OpenAPI schemas shipped in the kubernetes-models package, and
// checks the fields every object of its kind needs. Exit 1 with a message per invalid object.
"use strict";
const yaml = require("js-yaml");
const fs = require("fs");

function modelClass(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const candidates = group === ""
    ? [`kubernetes-models/${version}`]
    : [`kubernetes-models/${group}/${version}`, `@kubernetes-models/prometheus-operator/${group}/${version}`];
  for (const path of candidates) {
    try {
      const mod = require(path);
      if (mod[kind]) return mod[kind];
    } catch (e) {
      // try the next package
    }
  }
  return null;
}

const docs = yaml.loadAll(fs.readFileSync(0, "utf8")).filter((d) => d);
let failures = 0;
for (const obj of docs) {
  const name = `${obj.kind}/${obj.metadata && obj.metadata.name}`;
  const Model = modelClass(obj.apiVersion, obj.kind);
  if (!Model) {
    console.error(`${name}: unknown apiVersion/kind ${obj.apiVersion} ${obj.kind}`);
    failures++;
    continue;
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    console.error(`${name}: ${e.message}`);
    failures++;
    continue;
  }
  if (!obj.metadata || !obj.metadata.name) {
    console.error(`${name}: metadata.name is required`);
    failures++;
  }
  console.log(`ok ${obj.apiVersion} ${name}`);
}
if (docs.length === 0) {
  console.error("no objects on stdin");
  process.exit(1);
}
process.exit(failures ? 1 : 0);
