"""Security headers Django does not set itself."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

# No inline scripts: every script is a static file and page data travels in json_script blocks (inert JSON).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self' ws: wss:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # The Django admin ships inline scripts of its own; it gets Django's defaults only.
        if not request.path.startswith("/admin/"):
            response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response


# Chat languages are ISO 639-1; Django's locale for Chinese is "zh-hans".
UI_LOCALE_OF = {"zh": "zh-hans"}


class UserLanguageMiddleware:
    """The interface speaks the signed-in user's language (their reading language), else the browser's."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.utils import translation

        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            translation.activate(UI_LOCALE_OF.get(user.language, user.language))
            request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)
