"""The API's routes, one APIRouter per area; `app.api.main.create_app` includes them in order."""
