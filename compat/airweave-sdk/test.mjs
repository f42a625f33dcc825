// Compatibility test: the official @airweave/sdk (pinned in package.json) against a
// running Valetkey server. Run through ./run.sh, or directly with
//   VALETKEY_URL=http://127.0.0.1:8080 VALETKEY_API_KEY=vk_... node --test test.mjs
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { AirweaveSDKClient, AirweaveSDK, AirweaveSDKError } from "@airweave/sdk";

const baseUrl = process.env.VALETKEY_URL;
const apiKey = process.env.VALETKEY_API_KEY;
if (!baseUrl || !apiKey) {
  throw new Error("VALETKEY_URL and VALETKEY_API_KEY must be set");
}

const client = new AirweaveSDKClient({ apiKey, baseUrl });
// Fail fast: the SDK retries 5xx twice with back-off; a compat failure should not wait for that.
const opts = { maxRetries: 0, timeoutInSeconds: 20 };

const ACCESS = "compat-access-XYZ";
const REFRESH = "compat-refresh-XYZ";
const CONNECTION_STATUSES = ["active", "pending_auth", "syncing", "error", "inactive", "pending_sync"];
const AUTH_METHODS = ["direct", "oauth_browser", "oauth_token", "oauth_byoc", "auth_provider"];

const state = { collection: undefined, connectionId: undefined, connectionDeleted: false, collectionDeleted: false };

function need(value, what) {
  assert.ok(value, `precondition: ${what} (an earlier test failed)`);
  return value;
}

function assertNoSecrets(value, where) {
  const json = JSON.stringify(value);
  assert.ok(!json.includes(ACCESS), `${where} leaks the access token: ${json}`);
  assert.ok(!json.includes(REFRESH), `${where} leaks the refresh token: ${json}`);
}

function assertConnection(sc, where) {
  assert.equal(typeof sc, "object", `${where}: body is not an object`);
  assert.ok(sc !== null, `${where}: body is null`);
  for (const k of ["id", "name", "short_name", "readable_collection_id", "created_at", "modified_at"]) {
    assert.equal(typeof sc[k], "string", `${where}: ${k} must be a string, got ${JSON.stringify(sc[k])}`);
  }
  assert.ok(CONNECTION_STATUSES.includes(sc.status), `${where}: bad status ${JSON.stringify(sc.status)}`);
  assert.equal(typeof sc.auth, "object", `${where}: auth must be an object`);
  assert.ok(sc.auth !== null, `${where}: auth is null`);
  assert.ok(AUTH_METHODS.includes(sc.auth.method), `${where}: bad auth.method ${JSON.stringify(sc.auth.method)}`);
  assert.equal(typeof sc.auth.authenticated, "boolean", `${where}: auth.authenticated must be a boolean`);
}

// Expect the SDK call to throw; return the error.
async function rejects(promise, where) {
  try {
    const data = await promise;
    assert.fail(`${where}: expected an error, got ${JSON.stringify(data)}`);
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    return err;
  }
}

function assert404(err, where) {
  // @airweave/sdk 0.7.20 has no NotFoundError: 404 is the generic AirweaveSDKError with statusCode.
  assert.ok(err instanceof AirweaveSDKError, `${where}: expected AirweaveSDKError, got ${err}`);
  assert.ok(!(err instanceof AirweaveSDK.UnprocessableEntityError), `${where}: 404 must not be a 422 error`);
  assert.equal(err.statusCode, 404, `${where}: ${err.message}`);
  assert.equal(typeof err.body?.detail, "string", `${where}: body.detail must be a string: ${JSON.stringify(err.body)}`);
}

function assert422(err, where) {
  assert.ok(
    err instanceof AirweaveSDK.UnprocessableEntityError,
    `${where}: expected AirweaveSDK.UnprocessableEntityError, got ${err?.constructor?.name}: ${err?.message}`,
  );
  assert.ok(err instanceof AirweaveSDKError);
  assert.equal(err.statusCode, 422);
  const detail = err.body?.detail;
  assert.ok(Array.isArray(detail) && detail.length > 0, `${where}: body.detail must be a non-empty array: ${JSON.stringify(err.body)}`);
  for (const d of detail) {
    assert.ok(Array.isArray(d.loc), `${where}: detail[].loc must be an array: ${JSON.stringify(d)}`);
    assert.equal(typeof d.msg, "string", `${where}: detail[].msg must be a string: ${JSON.stringify(d)}`);
    assert.equal(typeof d.type, "string", `${where}: detail[].type must be a string: ${JSON.stringify(d)}`);
  }
  return detail;
}

after(async () => {
  // Best-effort cleanup when a test failed half-way.
  if (state.connectionId && !state.connectionDeleted) {
    await client.sourceConnections.delete(state.connectionId, opts).catch(() => {});
  }
  if (state.collection && !state.collectionDeleted) {
    await client.collections.delete(state.collection.readable_id, opts).catch(() => {});
  }
});

test("1. collections.create returns a readable_id", async () => {
  const { data: col, rawResponse } = await client.collections.create({ name: "Compat Collection" }, opts).withRawResponse();
  assert.ok(rawResponse.status >= 200 && rawResponse.status < 300, `status ${rawResponse.status}`);
  assert.match(rawResponse.headers.get("content-type") ?? "", /json/);
  assert.equal(col.name, "Compat Collection");
  assert.equal(typeof col.readable_id, "string");
  assert.match(col.readable_id, /^[a-z0-9][a-z0-9-]*$/, "readable_id: lowercase letters, digits, hyphens");
  for (const k of ["id", "created_at", "modified_at", "organization_id", "embedding_model_name"]) {
    assert.equal(typeof col[k], "string", `collection.${k} must be a string, got ${JSON.stringify(col[k])}`);
  }
  assert.equal(typeof col.vector_size, "number", "collection.vector_size must be a number");
  if (col.status != null) assert.ok(["ACTIVE", "NEEDS SOURCE", "ERROR"].includes(col.status), `bad collection status ${col.status}`);
  state.collection = col;

  const got = await client.collections.get(col.readable_id, opts);
  assert.equal(got.readable_id, col.readable_id);
  assert.equal(got.id, col.id);

  const all = await client.collections.list({}, opts);
  assert.ok(Array.isArray(all), "collections.list must return a bare array");
  assert.ok(all.some((c) => c.readable_id === col.readable_id), "new collection missing from collections.list");
});

test("2. sources.list contains asana and notion; sources.get('asana') has auth info", async () => {
  const sources = await client.sources.list(opts);
  assert.ok(Array.isArray(sources), "sources.list must return a bare array");
  const names = sources.map((s) => s.short_name);
  assert.ok(names.includes("asana"), `asana missing from ${names.join(",")}`);
  assert.ok(names.includes("notion"), `notion missing from ${names.join(",")}`);

  const asana = await client.sources.get("asana", opts);
  assert.equal(asana.short_name, "asana");
  for (const k of ["id", "name", "class_name", "created_at", "modified_at"]) {
    assert.equal(typeof asana[k], "string", `source.${k} must be a string, got ${JSON.stringify(asana[k])}`);
  }
  assert.ok(Array.isArray(asana.config_fields?.fields), `config_fields must be {fields: [...]}, got ${JSON.stringify(asana.config_fields)}`);
  assert.ok(Array.isArray(asana.auth_methods) && asana.auth_methods.length > 0, `auth_methods: ${JSON.stringify(asana.auth_methods)}`);
  for (const m of asana.auth_methods) assert.ok(AUTH_METHODS.includes(m), `unknown auth method ${m}`);
  assert.ok(Array.isArray(asana.auth_fields?.fields), `auth_fields must be {fields: [...]}, got ${JSON.stringify(asana.auth_fields)}`);
  for (const f of asana.auth_fields.fields) {
    for (const k of ["name", "title", "type"]) {
      assert.equal(typeof f[k], "string", `auth_fields.fields[].${k} must be a string: ${JSON.stringify(f)}`);
    }
  }
});

test("3. sourceConnections.create with an injected OAuth token", async () => {
  const col = need(state.collection, "collection created");
  const { data: sc, rawResponse } = await client.sourceConnections
    .create(
      {
        name: "Compat Asana",
        short_name: "asana",
        readable_collection_id: col.readable_id,
        // OAuthTokenAuthentication in the SDK: {access_token, refresh_token?, expires_at?}
        authentication: { access_token: ACCESS, refresh_token: REFRESH },
      },
      opts,
    )
    .withRawResponse();
  assert.ok(rawResponse.status >= 200 && rawResponse.status < 300, `status ${rawResponse.status}`);
  assertConnection(sc, "create");
  assert.equal(sc.name, "Compat Asana");
  assert.equal(sc.short_name, "asana");
  assert.equal(sc.readable_collection_id, col.readable_id);
  assert.equal(sc.auth.method, "oauth_token");
  assert.equal(sc.auth.authenticated, true);
  assertNoSecrets(sc, "create response");
  state.connectionId = sc.id;
});

test("4. sourceConnections.get / list / update", async () => {
  const id = need(state.connectionId, "connection created");
  const col = need(state.collection, "collection created");

  const got = await client.sourceConnections.get(id, opts);
  assertConnection(got, "get");
  assert.equal(got.id, id);
  assert.equal(got.name, "Compat Asana");
  assertNoSecrets(got, "get response");

  const listed = await client.sourceConnections.list({ collection: col.readable_id }, opts);
  assert.ok(Array.isArray(listed), "sourceConnections.list must return a bare array");
  const item = listed.find((x) => x.id === id);
  assert.ok(item, `connection ${id} missing from list?collection=${col.readable_id}`);
  for (const x of listed) assert.equal(x.readable_collection_id, col.readable_id, "collection filter not applied");
  assert.equal(item.short_name, "asana");
  assert.equal(typeof item.is_authenticated, "boolean", "list item needs is_authenticated");
  assert.ok(AUTH_METHODS.includes(item.auth_method), `list item auth_method: ${JSON.stringify(item.auth_method)}`);
  assert.ok(CONNECTION_STATUSES.includes(item.status), `list item status: ${JSON.stringify(item.status)}`);
  assertNoSecrets(listed, "list response");

  const unfiltered = await client.sourceConnections.list({}, opts);
  assert.ok(Array.isArray(unfiltered) && unfiltered.some((x) => x.id === id), "connection missing from unfiltered list");

  const updated = await client.sourceConnections.update(id, { name: "Compat Asana 2", description: "updated by compat test" }, opts);
  assertConnection(updated, "update");
  assert.equal(updated.id, id);
  assert.equal(updated.name, "Compat Asana 2");
  assert.equal(updated.description, "updated by compat test");
  assertNoSecrets(updated, "update response");

  const again = await client.sourceConnections.get(id, opts);
  assert.equal(again.name, "Compat Asana 2");
  assert.equal(again.description, "updated by compat test");
});

test("5. invalid create -> AirweaveSDK.UnprocessableEntityError with detail[]", async () => {
  const col = need(state.collection, "collection created");

  // name shorter than Airweave's min_length of 4
  const tooShort = await rejects(
    client.sourceConnections.create(
      { name: "abc", short_name: "asana", readable_collection_id: col.readable_id, authentication: { access_token: ACCESS } },
      opts,
    ),
    "name 'abc'",
  );
  const detail = assert422(tooShort, "name 'abc'");
  assert.ok(
    detail.some((d) => d.loc.includes("name")),
    `a detail entry should point at name: ${JSON.stringify(detail)}`,
  );
  assertNoSecrets(tooShort.body, "422 body");

  // required short_name missing (the SDK sends whatever it is given)
  const missing = await rejects(
    client.sourceConnections.create({ name: "Compat Missing", readable_collection_id: col.readable_id }, opts),
    "missing short_name",
  );
  assert422(missing, "missing short_name");
});

test("5b. run, getSourceConnectionJobs, cancelJob, collections.search (issue #7)", async () => {
  const id = need(state.connectionId, "connection created");
  const col = need(state.collection, "collection created");
  const job = await client.sourceConnections.run(id, {}, opts);
  assert.equal(job.source_connection_id, id);
  assert.ok(["created", "pending", "running", "completed"].includes(job.status), `run status ${job.status}`);
  const jobs = await client.sourceConnections.getSourceConnectionJobs(id, {}, opts);
  assert.ok(Array.isArray(jobs) && jobs.some((j) => j.id === job.id), "the run is listed");
  // Cancel: 200 while the job is pending or running, 409 once it has ended.
  try {
    const c = await client.sourceConnections.cancelJob(id, job.id, opts);
    assert.ok(["cancelling", "cancelled"].includes(c.status), `cancel status ${c.status}`);
  } catch (err) {
    assert.ok(err instanceof AirweaveSDKError && err.statusCode === 409, `cancel failed: ${err}`);
  }
  const res = await client.collections.search(col.readable_id, { query: "anything" }, opts);
  assert.ok(Array.isArray(res.results), "search results array");
  const legacy = await client.collections.searchGetLegacy(col.readable_id, { query: "anything" }, opts);
  assert.ok(Array.isArray(legacy.results) && ["success", "no_results"].includes(legacy.status));
});

test("6. get of an unknown connection id -> AirweaveSDKError 404", async () => {
  const err = await rejects(client.sourceConnections.get(randomUUID(), opts), "unknown id");
  assert404(err, "unknown id");
});

test("7. delete connection, then get -> 404; delete collection", async () => {
  const id = need(state.connectionId, "connection created");
  const col = need(state.collection, "collection created");

  await client.sourceConnections.delete(id, opts);
  state.connectionDeleted = true;
  assert404(await rejects(client.sourceConnections.get(id, opts), "get after delete"), "get after delete");

  await client.collections.delete(col.readable_id, opts);
  state.collectionDeleted = true;
  assert404(await rejects(client.collections.get(col.readable_id, opts), "collection after delete"), "collection after delete");
});

test("8. a wrong API key is refused with 401/403", async () => {
  const bad = new AirweaveSDKClient({ apiKey: "vk_compat_wrong_key", baseUrl });
  const err = await rejects(bad.collections.list({}, opts), "wrong key");
  assert.ok(err instanceof AirweaveSDKError, `expected AirweaveSDKError, got ${err}`);
  assert.ok([401, 403].includes(err.statusCode), `expected 401/403, got ${err.statusCode}`);
});
