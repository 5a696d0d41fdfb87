# Example authorization policy for the demo app, written against the input
# that Kong Gateway's OPA plugin (and policyship/enforcer) sends:
# input.request.http.{method, path, headers}. Users and roles live in data.json.
#
# The entrypoint is data.authz.allow. Its value follows Kong's decision shape:
# {"allow": true, "headers": {...}} lets the request through with extra headers,
# {"allow": false, "status": n, "message": m} denies it with that status.
package authz

# Health checks are open to everyone, so a load balancer needs no key.
public_paths := {"/health"}

default allow := {"allow": false, "status": 401, "message": "missing or unknown API key"}

allow := {"allow": true, "headers": {}} if {
	input.request.http.path in public_paths
}

allow := {"allow": true, "headers": {"x-user": user, "x-roles": concat(",", sort(data.users[user].roles))}} if {
	permitted
	not path in public_paths
}

allow := {"allow": false, "status": 403, "message": sprintf("%s may not %s %s", [user, method, path])} if {
	user
	not permitted
	not path in public_paths
}

method := input.request.http.method

path := input.request.http.path

# The caller is whoever owns the x-api-key header's value.
user := name if {
	some name, u in data.users
	u.key == input.request.http.headers["x-api-key"]
}

permitted if {
	some role in data.users[user].roles
	some grant in data.roles[role]
	method_granted(grant.methods)
	path_under(grant.prefix)
}

method_granted(methods) if "*" in methods

method_granted(methods) if method in methods

path_under(prefix) if path == prefix

path_under(prefix) if startswith(path, concat("", [trim_suffix(prefix, "/"), "/"]))
