#!/usr/bin/env bash
# Validate infra/template.yaml offline: run the SAM transform (aws-sam-translator)
# and lint the resulting CloudFormation with cfn-lint. Linting the SAM template
# alone misses broken references inside SAM resources (event API ids, !GetAtt
# attributes, policies), so the translated JSON is what gets linted.
#
#   scripts/lint-template.sh [TEMPLATE]     (default: infra/template.yaml)
#
# The tools (requirements-lint.txt, pinned) live in their own project-local
# venv, .venv-lint (.venv is the emulator's), created on first use (~30 s);
# $SCIMSYNC_LINT_VENV overrides its location.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEMPLATE=${1:-$ROOT/infra/template.yaml}
VENV=${SCIMSYNC_LINT_VENV:-$ROOT/.venv-lint}
REGION=${AWS_REGION:-us-east-1}

"$ROOT/scripts/pyvenv.sh" "$VENV" "$ROOT/requirements-lint.txt"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "lint-template: SAM transform of ${TEMPLATE#"$ROOT"/}" >&2
# The transform reads the region from a boto3 session; no credentials needed.
AWS_DEFAULT_REGION=$REGION "$VENV/bin/python" - "$TEMPLATE" "$out/translated.json" "$REGION" <<'PY'
import json
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

src, dst, region = sys.argv[1:4]
with open(src, encoding="utf-8") as f:
    template = yaml_parse(f.read())

# Local CodeUri values only mean something to `sam build`; the transform wants
# an S3 location.
for resource in template.get("Resources", {}).values():
    if resource.get("Type") == "AWS::Serverless::Function":
        resource.setdefault("Properties", {})["CodeUri"] = "s3://scimsync-lint-dummy/code.zip"


class NoManagedPolicies:
    """The template names no managed policies; never call IAM."""

    def load(self):
        return {}


params = {"AWS::Region": region}
try:
    translated = transform(template, params, NoManagedPolicies())
except InvalidDocumentException as e:
    for cause in e.causes:
        print(f"SAM transform error: {cause.message}", file=sys.stderr)
    sys.exit(1)
with open(dst, "w", encoding="utf-8") as f:
    json.dump(translated, f, indent=2)
PY

echo "lint-template: cfn-lint (SAM template and translated CloudFormation)" >&2
"$VENV/bin/cfn-lint" --regions "$REGION" -- "$TEMPLATE" "$out/translated.json"
echo "lint-template: OK" >&2
