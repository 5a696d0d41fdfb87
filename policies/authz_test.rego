package authz_test

import data.authz

request(method, path, key) := {"request": {"http": {
	"method": method,
	"path": path,
	"headers": {"x-api-key": key},
}}}

anonymous(method, path) := {"request": {"http": {"method": method, "path": path, "headers": {}}}}

test_health_is_public if {
	authz.allow == {"allow": true, "headers": {}} with input as anonymous("GET", "/health")
}

test_health_is_public_with_a_key if {
	authz.allow.allow with input as request("GET", "/health", "bob-key")
}

# An admin is permitted everywhere; a public path must still give one decision, not a conflict.
test_health_is_public_for_an_admin if {
	authz.allow == {"allow": true, "headers": {}} with input as request("GET", "/health", "alice-key")
}

test_missing_key_is_401 if {
	d := authz.allow with input as anonymous("GET", "/orders")
	d.allow == false
	d.status == 401
}

test_unknown_key_is_401 if {
	d := authz.allow with input as request("GET", "/orders", "mallory-key")
	d.status == 401
}

test_admin_may_do_anything if {
	d := authz.allow with input as request("DELETE", "/admin/users/7", "alice-key")
	d.allow
	d.headers["x-user"] == "alice"
	d.headers["x-roles"] == "admin"
}

test_reader_may_read_orders if {
	d := authz.allow with input as request("GET", "/orders/42", "bob-key")
	d.allow
	d.headers["x-user"] == "bob"
}

test_reader_may_read_the_orders_collection if {
	authz.allow.allow with input as request("GET", "/orders", "bob-key")
}

test_reader_may_read_reports if {
	authz.allow.allow with input as request("GET", "/reports/daily", "bob-key")
}

test_reader_may_not_write_orders if {
	d := authz.allow with input as request("POST", "/orders", "bob-key")
	d.allow == false
	d.status == 403
	d.message == "bob may not POST /orders"
}

test_prefix_is_a_path_segment_not_a_string_prefix if {
	d := authz.allow with input as request("GET", "/orders-archive", "bob-key")
	d.status == 403
}

test_writer_may_write_orders if {
	d := authz.allow with input as request("PUT", "/orders/42", "carol-key")
	d.allow
	d.headers["x-roles"] == "reader,writer"
}

test_writer_may_not_delete_reports if {
	d := authz.allow with input as request("DELETE", "/reports/daily", "carol-key")
	d.status == 403
}
