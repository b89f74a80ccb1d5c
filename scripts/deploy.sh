#!/usr/bin/env bash
# Deploy the stack with `sam deploy`, using the packages `make build` made.
#
#   scripts/deploy.sh [--guided] [SAM DEPLOY ARGS...]
#
# 1. Builds the bootstraps (scripts/lambda-build.sh) unless SKIP_BUILD=1.
# 2. Writes target/sam/template.json: infra/template.yaml with each function's
#    CodeUri pointing at target/lambda/<Binary>/, so `sam deploy` zips and
#    uploads exactly the binaries that were built (and measured), without a
#    second `sam build`.
# 3. Runs `sam deploy` with the settings file infra/samconfig.local.toml if it
#    exists (your own, git-ignored), else infra/samconfig.toml (committed
#    defaults: stack "scimsync", managed S3 bucket, confirm the change set).
#    --guided asks for every setting and saves the answers to
#    infra/samconfig.local.toml. Region and credentials come from the
#    standard AWS configuration (AWS_PROFILE, AWS_REGION, ...); extra
#    arguments go to `sam deploy` (e.g. --region eu-west-1,
#    --parameter-overrides Stage=test SyncSchedule="rate(12 hours)").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${SCIMSYNC_DEPLOY_VENV:-$ROOT/.venv-deploy}
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
TEMPLATE="$ROOT/infra/template.yaml"
STAGED="$TARGET_DIR/sam/template.json"

log() { printf 'deploy: %s\n' "$*" >&2; }

guided=0
args=()
for arg in "$@"; do
    case "$arg" in
        --guided) guided=1 ;;
        *) args+=("$arg") ;;
    esac
done

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    "$ROOT/scripts/lambda-build.sh"
else
    "$ROOT/scripts/pyvenv.sh" "$VENV" "$ROOT/requirements-deploy.txt"
fi

mkdir -p "$(dirname "$STAGED")"
"$VENV/bin/python" - "$TEMPLATE" "$TARGET_DIR/lambda" "$STAGED" <<'PY'
import json
import os
import sys

from samtranslator.yaml_helper import yaml_parse

src, lambda_dir, dst = sys.argv[1:4]
with open(src, encoding="utf-8") as f:
    template = yaml_parse(f.read())

for name, resource in template.get("Resources", {}).items():
    if resource.get("Type") != "AWS::Serverless::Function":
        continue
    binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
    if not binary:
        sys.exit(f"deploy: {name} has no Metadata.BuildProperties.Binary")
    package = os.path.join(lambda_dir, binary)
    if not os.path.isfile(os.path.join(package, "bootstrap")):
        sys.exit(f"deploy: {package}/bootstrap is missing: run `make build`")
    resource["Properties"]["CodeUri"] = package
    # Already built: nothing for SAM to build.
    resource.pop("Metadata", None)

with open(dst, "w", encoding="utf-8") as f:
    json.dump(template, f, indent=2)
PY
log "staged ${STAGED#"$ROOT"/} (CodeUri -> ${TARGET_DIR#"$ROOT"/}/lambda/<binary>/)"

config="$ROOT/infra/samconfig.toml"
[[ -f "$ROOT/infra/samconfig.local.toml" ]] && config="$ROOT/infra/samconfig.local.toml"
sam_args=(deploy --template-file "$STAGED")
if ((guided)); then
    # Guided answers go to your own file, seeded from the shared defaults
    # (sam needs --config-file to exist).
    config="$ROOT/infra/samconfig.local.toml"
    [[ -f "$config" ]] || cp "$ROOT/infra/samconfig.toml" "$config"
    sam_args+=(--guided)
fi
sam_args+=(--config-file "$config")
log "sam ${sam_args[*]} ${args[*]:-} (settings: ${config#"$ROOT"/})"
exec "$VENV/bin/sam" "${sam_args[@]}" "${args[@]}"
