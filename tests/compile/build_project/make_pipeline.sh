#!/bin/sh
# A shell build command: a pipeline another tool exported (here a committed YAML), packed as KFP 1.8 did.
set -e
work=$(mktemp -d)
cp exported/pipeline.yaml "$work/pipeline.yaml"
tar -czf "$KFP_CI_OUTPUT" -C "$work" pipeline.yaml
rm -rf "$work"
