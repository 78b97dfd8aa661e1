"""FastAPI "hello world": the ceiling for any FastAPI app on this machine.

The benchmark runs it with the same uvicorn options as the service (``service.server``:
uvloop, httptools, no access log, no Server header), so the ratio to it measures only what the
service does per request beyond FastAPI's own routing and JSON response.
"""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def hello() -> dict[str, str]:
    return {"message": "Hello World"}
