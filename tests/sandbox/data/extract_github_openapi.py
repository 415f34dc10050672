import json
import sys

from offboard.sandbox import make_company
from offboard.sandbox._github import GitHub

spec = json.load(open("/tmp/octo/package/generated/ghec.json"))
sim = GitHub(make_company(3))
want = {}
for method, pattern in sim.routes():
    # our patterns use OpenAPI names already except the SCIM id
    p = pattern.replace("{id}", "{scim_user_id}")
    if p == "/graphql":
        continue
    item = spec["paths"].get(p)
    assert item and method.lower() in item, (method, p)
    want.setdefault(p, {})[method.lower()] = item[method.lower()]
    if "parameters" in item:
        want[p]["parameters"] = item["parameters"]
# collect referenced components recursively
comps = {}


def walk(node):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            _, _, kind, name = ref.split("/", 3)
            key = (kind, name)
            if key not in comps:
                comps[key] = spec["components"][kind][name]
                walk(comps[key])
        for v in node.values():
            walk(v)
    elif isinstance(node, list):
        for v in node:
            walk(v)


walk(want)
out = {
    "openapi": spec["openapi"],
    "info": {
        "title": spec["info"]["title"],
        "version": spec["info"]["version"],
        "x-source": "npm @octokit/openapi 23.0.2, generated/ghec.json (GitHub Enterprise Cloud REST API description); trimmed to the paths the sandbox serves by tests/sandbox/data/README.md's script",
    },
    "paths": want,
    "components": {},
}
for (kind, name), v in sorted(comps.items()):
    out["components"].setdefault(kind, {})[name] = v
json.dump(out, open(sys.argv[1], "w"), indent=1, sort_keys=True)
print(len(want), "paths", len(comps), "components")
