// A handler module whose loading throws: a dependency that is not installed (import_fails.py's twin).
"use strict";

require("a-dependency-that-is-not-installed");

module.exports = { handle: (payload) => payload };
