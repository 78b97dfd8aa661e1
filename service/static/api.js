// The service's HTTP API as the page uses it: the model list, image classification, model files.
// Errors become ServiceError with the service's own message ({"error": ...}).

export class ServiceError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.status = status; // 0: the service could not be reached
  }
}

const path = (...parts) => parts.map(encodeURIComponent).join("/");

export class ServiceClient {
  constructor(apiKey = "") {
    this.apiKey = apiKey;
  }

  headers() {
    return this.apiKey ? { Authorization: `Bearer ${this.apiKey}` } : {};
  }

  async request(url, options = {}) {
    let response;
    try {
      response = await fetch(url, { ...options, headers: this.headers() });
    } catch (e) {
      throw new ServiceError(`Cannot reach the service: ${e.message}`);
    }
    if (!response.ok) throw new ServiceError(await errorMessage(response), response.status);
    return response;
  }

  // GET /api/models -> [{name, default_version, labels, input_shape, versions: [{version, state, error}]}]
  async models() {
    const response = await this.request("/api/models", { cache: "no-store" });
    return (await response.json()).models || [];
  }

  // POST /v1/models/{name}/versions/{v}/image -> {label, label_name, top_k, model_version, ...}
  async classifyImage(name, version, blob, topK) {
    const form = new FormData();
    form.append("file", blob, "digit.png");
    const url = `/v1/models/${path(name)}/versions/${path(String(version))}/image?top_k=${topK}`;
    return (await this.request(url, { method: "POST", body: form })).json();
  }

  // GET /api/models/{name}/versions/{v}/files/{filename} -> bytes
  async modelFile(name, version, filename) {
    const url = `/api/models/${path(name, "versions", String(version), "files", filename)}`;
    return new Uint8Array(await (await this.request(url)).arrayBuffer());
  }
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (typeof body?.error === "string") return body.error;
    if (body?.detail) return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch (_) {
    /* not JSON: fall through to the status line */
  }
  return `${response.status} ${response.statusText}`;
}
