<?php
/*
 * What the three pages share: start-up (no PHP message ever reaches a
 * visitor), the language, escaping, the page frame, the state pages and the
 * sign-up form.  No sessions, no cookies: every page works from its request
 * alone, which is also what RFC 8058's one-click POST expects.
 */
declare(strict_types=1);

require_once __DIR__ . '/newsletterd.php';

const SITE_LANGS = ['de', 'en'];
const SITE_TOKEN_RE = '/\A[A-Za-z0-9_-]{1,128}\z/';
/* The daemon's own limits (include/bounds.h): name 200 bytes, user agent 512. */
const SITE_NAME_MAX_BYTES = 200;
const SITE_USER_AGENT_MAX_BYTES = 512;

/* ---- start-up ---- */

/*
 * $page is the page's path below the site's root ('' for the form,
 * 'confirm', 'unsubscribe'); it also tells how deep the script lies, so that
 * links work when the site lives under a prefix such as /newsletter/.
 */
function site_boot(string $page): void
{
    ini_set('display_errors', '0');
    ini_set('display_startup_errors', '0');
    ini_set('log_errors', '1');
    ini_set('html_errors', '0');
    error_reporting(E_ALL);
    header_remove('X-Powered-By');
    ob_start();

    $script = (string)($_SERVER['SCRIPT_NAME'] ?? '/index.php');
    $base = dirname($script, $page === '' ? 1 : 2);
    $base = rtrim(str_replace('\\', '/', $base), '/') . '/';
    $GLOBALS['site'] = [
        'page' => $page,
        'base' => $base,
        'lang' => site_detect_lang(),
        'texts' => require __DIR__ . '/texts.php',
        'query' => [],          /* kept in the language switch link */
        'done' => false,
    ];

    set_exception_handler(static function (Throwable $e): void {
        error_log('website: ' . get_class($e) . ': ' . $e->getMessage() . ' at ' . $e->getFile() . ':' . $e->getLine());
        site_emergency_page();
    });
    register_shutdown_function(static function (): void {
        $e = error_get_last();
        if ($e !== null && ($e['type'] & (E_ERROR | E_PARSE | E_CORE_ERROR | E_COMPILE_ERROR | E_USER_ERROR))) {
            site_emergency_page();
        }
    });
}

/* Replaces whatever was half-written with the plain error page. */
function site_emergency_page(): void
{
    while (ob_get_level() > 0) {
        ob_end_clean();
    }
    if (!empty($GLOBALS['site']['done'])) {
        return;
    }
    $GLOBALS['site']['done'] = true;
    if (!headers_sent()) {
        http_response_code(500);
        header('Content-Type: text/html; charset=utf-8');
        header('Cache-Control: no-store');
    }
    $en = ($GLOBALS['site']['lang'] ?? 'de') === 'en';
    $css = htmlspecialchars(($GLOBALS['site']['base'] ?? '/') . 'style.css', ENT_QUOTES, 'UTF-8');
    [$lang, $title, $text] = $en
        ? ['en', 'Sorry, that did not work', 'Something went wrong on our side. Please try again in a few minutes.']
        : ['de', 'Das hat leider nicht geklappt', 'Bei uns ist etwas schiefgegangen. Bitte versuchen Sie es in ein paar Minuten noch einmal.'];
    echo "<!doctype html>\n<html lang=\"$lang\">\n<head>\n<meta charset=\"utf-8\">\n"
        . "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        . "<title>$title</title>\n<link rel=\"stylesheet\" href=\"$css\">\n</head>\n<body>\n<main id=\"main\">\n"
        . "<section class=\"card state state-error\" data-state=\"error\">\n<h1>$title</h1>\n<p class=\"lead\">$text</p>\n"
        . "</section>\n</main>\n</body>\n</html>\n";
}

/* ---- language ---- */

/* ?lang= (also as a form field) first, then the browser's Accept-Language; German by default. */
function site_detect_lang(): string
{
    foreach ([$_POST['lang'] ?? null, $_GET['lang'] ?? null] as $l) {
        if (is_string($l) && in_array($l, SITE_LANGS, true)) {
            return $l;
        }
    }
    $header = $_SERVER['HTTP_ACCEPT_LANGUAGE'] ?? '';
    return is_string($header) && site_accept_prefers($header, 'en', 'de') ? 'en' : 'de';
}

/* Whether an Accept-Language header ranks $a above $b (equal weight: the one named first). */
function site_accept_prefers(string $header, string $a, string $b): bool
{
    $rank = [$a => [0.0, PHP_INT_MAX], $b => [0.0, PHP_INT_MAX]];
    foreach (explode(',', substr($header, 0, 1000)) as $pos => $item) {
        $parts = explode(';', $item);
        $primary = strtolower(explode('-', trim($parts[0]))[0]);
        if (!isset($rank[$primary])) {
            continue;
        }
        $q = 1.0;
        foreach (array_slice($parts, 1) as $p) {
            if (preg_match('/\A\s*q\s*=\s*([01](?:\.[0-9]{0,3})?)\s*\z/i', $p, $m)) {
                $q = (float)$m[1];
            }
        }
        if ($q > $rank[$primary][0]) {
            $rank[$primary] = [$q, $pos];
        }
    }
    [$qa, $pa] = $rank[$a];
    [$qb, $pb] = $rank[$b];
    return $qa > $qb || ($qa > 0 && $qa === $qb && $pa < $pb);
}

function site_lang(): string
{
    return $GLOBALS['site']['lang'];
}

/* The text $key in the page's language. */
function t(string $key): string
{
    return $GLOBALS['site']['texts'][site_lang()][$key] ?? $key;
}

/* ---- small helpers ---- */

function h(string $s): string
{
    return htmlspecialchars($s, ENT_QUOTES | ENT_SUBSTITUTE | ENT_HTML5, 'UTF-8');
}

/* A URL of this site: $page as in site_boot(), with a query. */
function site_url(string $page, array $query = []): string
{
    $q = http_build_query($query, '', '&', PHP_QUERY_RFC3986);
    return $GLOBALS['site']['base'] . $page . ($q !== '' ? '?' . $q : '');
}

/* The sign-up form's URL in the page's language. */
function site_form_url(): string
{
    return site_url('', site_lang() === 'en' ? ['lang' => 'en'] : []);
}

function site_method(): string
{
    $m = strtoupper((string)($_SERVER['REQUEST_METHOD'] ?? 'GET'));
    return $m === 'HEAD' ? 'GET' : $m;
}

/* A string request parameter ('' when absent or not a string). */
function param(array $from, string $name): string
{
    $v = $from[$name] ?? '';
    return is_string($v) ? $v : '';
}

/* A token from the link (or a form), or null when it cannot be one. */
function site_token(string $from): ?string
{
    $t = trim($from);
    return preg_match(SITE_TOKEN_RE, $t) ? $t : null;
}

/* The visitor's address as the web server saw it (behind a proxy: the proxy's). */
function visitor_ip(): ?string
{
    $ip = $_SERVER['REMOTE_ADDR'] ?? null;
    return is_string($ip) && filter_var($ip, FILTER_VALIDATE_IP) !== false ? $ip : null;
}

/* The User-Agent header: printable ASCII only (it is nothing else when honest), at most 512 bytes. */
function visitor_agent(): ?string
{
    $ua = $_SERVER['HTTP_USER_AGENT'] ?? '';
    if (!is_string($ua)) {
        return null;
    }
    $ua = trim(substr((string)preg_replace('/[^\x20-\x7e]+/', '', $ua), 0, SITE_USER_AGENT_MAX_BYTES));
    return $ua !== '' ? $ua : null;
}

function utf8_clean(string $s): bool
{
    return preg_match('//u', $s) === 1 && preg_match('/[\x00-\x08\x0a-\x1f\x7f]/', $s) === 0;
}

/* ---- the page frame ---- */

/*
 * Sends a whole page and ends the request.  $query: what the language switch
 * link keeps (e.g. the token).
 */
function render_page(string $title, string $content, int $status = 200, array $query = [], bool $index = false,
                     string $frameSrc = "'none'", string $head = ''): never
{
    $h = 'h';       /* a heredoc calls functions only through a variable */
    $lang = site_lang();
    $other = $lang === 'de' ? 'en' : 'de';
    $switch = site_url($GLOBALS['site']['page'], $query + ['lang' => $other]);

    http_response_code($status);
    header('Content-Type: text/html; charset=utf-8');
    header('Content-Language: ' . $lang);
    header('Cache-Control: no-store');
    header('Vary: Accept-Language');
    header('Referrer-Policy: no-referrer');
    header('X-Content-Type-Options: nosniff');
    header("Content-Security-Policy: default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; frame-src $frameSrc");

    $css = h($GLOBALS['site']['base'] . 'style.css');
    $icon = h($GLOBALS['site']['base'] . 'favicon.svg');
    $robots = $index ? '' : "\n<meta name=\"robots\" content=\"noindex, nofollow\">";
    $site = h(t('site_name'));
    echo <<<HTML
<!doctype html>
<html lang="{$lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">{$robots}
<title>{$h($title)} – {$site}</title>
<link rel="stylesheet" href="{$css}">
<link rel="icon" href="{$icon}" type="image/svg+xml">{$head}
</head>
<body>
<a class="skip" href="#main">{$h(t('skip'))}</a>
<header class="top">
<div class="top-inner">
<a class="brand" href="{$h(site_form_url())}">{$site}</a>
<nav aria-label="{$h(t('lang_nav'))}"><a href="{$h($switch)}" lang="{$other}" hreflang="{$other}">{$h(t('other_lang'))}</a></nav>
</div>
</header>
<main id="main">
{$content}
</main>
<footer class="bottom"><p>{$h(t('footer'))}</p></footer>
</body>
</html>

HTML;
    $GLOBALS['site']['done'] = true;
    ob_end_flush();
    exit;
}

/* ---- state pages ---- */

const SITE_ICONS = [
    'pending' => '<path d="M3 6h18v12H3z"/><path d="m3 7 9 6 9-6"/>',
    'confirmed' => '<path d="m5 12.5 4.5 4.5L19 7.5"/>',
    'duplicate' => '<circle cx="12" cy="12" r="9"/><path d="M12 11v6"/><path d="M12 7.5v.01"/>',
    'expired' => '<circle cx="12" cy="12" r="9"/><path d="M12 7v5l3.5 2"/>',
    'unsubscribed' => '<path d="M3 6h18v12H3z"/><path d="m3 7 9 6 9-6"/><path d="M2 3l20 18"/>',
    'error' => '<path d="M12 3.5 2.5 20h19z"/><path d="M12 10v4.5"/><path d="M12 17.5v.01"/>',
];

function state_icon(string $state): string
{
    return '<svg class="icon" viewBox="0 0 24 24" width="28" height="28" aria-hidden="true" focusable="false" '
        . 'fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">'
        . SITE_ICONS[$state] . '</svg>';
}

/* A link styled as a button. */
function link_button(string $href, string $label, bool $secondary = false): string
{
    return '<p class="actions"><a class="button' . ($secondary ? ' secondary' : '') . '" href="' . h($href) . '">'
        . h($label) . '</a></p>';
}

/*
 * One state page: the card carrying data-state, a heading, a lead text, and
 * $extra (HTML) below.
 */
function state_page(string $state, string $title, string $lead, string $extra = '', int $status = 200, array $query = []): never
{
    $content = '<section class="card state state-' . h($state) . '" data-state="' . h($state) . '" aria-labelledby="title">'
        . "\n<div class=\"badge\">" . state_icon($state) . "</div>\n"
        . '<h1 id="title">' . h($title) . "</h1>\n"
        . '<p class="lead">' . h($lead) . "</p>\n"
        . $extra
        . "</section>";
    render_page($title, $content, $status, $query);
}

/* The page for a daemon answer with state "error" (or for a failure on our side). */
function error_page(array $answer, string $extra = '', array $query = []): never
{
    $code = (string)($answer['error'] ?? 'internal');
    switch ($code) {
        case 'unavailable':
        case 'internal':
            [$text, $status] = [t('error_unavailable'), 503];
            break;
        case 'rate_limited':
            [$text, $status] = [t('error_rate_limited'), 429];
            break;
        case 'unknown_token':
            [$text, $status] = [t('error_unknown_token'), 404];
            break;
        case 'no_token':
            [$text, $status] = [t('error_no_token'), 400];
            break;
        case 'invalid_email':
            [$text, $status] = [t('error_invalid_email'), 400];
            break;
        case 'method':
            [$text, $status] = [t('error_method'), 405];
            break;
        case 'challenge_required':
            [$text, $status] = [t('error_challenge_required'), 400];
            break;
        case 'challenge_failed':
            [$text, $status] = [t('error_challenge_failed'), 400];
            break;
        default:
            [$text, $status] = [t('error_other'), 400];
            break;
    }
    if ($status === 503) {
        header('Retry-After: 120');
    } elseif ($status === 405) {
        header('Allow: GET, HEAD, POST');
    }
    if ($extra === '') {
        $extra = link_button(site_form_url(), t('back_to_form'), true);
    }
    state_page('error', t('error_title'), $text, $extra, $status, $query);
}

/* ---- the sign-up form ---- */

/*
 * The daemon's proof-of-work challenge for the form ([antibot] pow = on),
 * or null when it asks for none (pow = off, or it cannot be reached: the
 * sign-up then gets the daemon's own answer).  Asked once per page.
 */
function site_challenge(): ?array
{
    if (!array_key_exists('challenge', $GLOBALS['site'])) {
        $a = newsletterd_request(['op' => 'challenge']);
        $ch = $a['state'] === 'ok' && ($a['pow'] ?? false) === true && is_array($a['challenge'] ?? null)
            ? $a['challenge'] : null;
        $GLOBALS['site']['challenge'] = $ch;
    }
    return $GLOBALS['site']['challenge'];
}

/*
 * What the form carries when a sign-up needs a solved challenge: the
 * challenge for public/antibot.js to solve (with how long it stays valid),
 * the field the solution goes into, and for browsers without JavaScript a
 * note that it is needed.  '' when none is needed.
 */
function pow_fields(): array
{
    $ch = site_challenge();
    if ($ch === null) {
        return ['', ''];
    }
    $ttl = 0;
    if (preg_match('/\?expires=([0-9]{1,19})&\z/', (string)($ch['salt'] ?? ''), $m)) {
        $ttl = max(0, (int)$m[1] - time());
    }
    $attrs = ' data-pow="on" data-challenge="' . h(json_encode($ch, JSON_UNESCAPED_SLASHES)) . '"'
        . ' data-challenge-ttl="' . $ttl . '"'
        . ' data-challenge-url="' . h(site_url('challenge/')) . '"'
        . ' data-checking="' . h(t('pow_checking')) . '"'
        . ' data-unsupported="' . h(t('pow_unsupported')) . '"'
        . ' data-failed="' . h(t('error_challenge_failed')) . '"';
    $html = '<input type="hidden" name="altcha" value="">' . "\n"
        . '<noscript><p class="pow-note">' . h(t('pow_noscript')) . "</p></noscript>\n"
        . '<p class="pow-status" role="status" aria-live="polite" hidden></p>' . "\n"
        . '<script src="' . h(site_url('antibot.js')) . '" defer></script>' . "\n";
    return [$attrs, $html];
}

/*
 * $values: email, name, consent (bool); $errors: field => text, listed
 * above the form too when $summary.  Returns the form's HTML.
 */
function signup_form(array $values = [], array $errors = [], bool $summary = true): string
{
    $h = 'h';       /* a heredoc calls functions only through a variable */
    $cls = static fn (array $errors, string $field): string => isset($errors[$field]) ? ' has-error' : '';
    $attr = static fn (string $name, string $value): string => $value !== '' ? ' ' . $name . '="' . h($value) . '"' : '';
    $lang = site_lang();
    $email = h((string)($values['email'] ?? ''));
    $name = h((string)($values['name'] ?? ''));
    $checked = !empty($values['consent']) ? ' checked' : '';
    $action = h(site_url(''));

    $err = static function (string $field) use ($errors): string {
        return isset($errors[$field])
            ? '<p class="field-error" id="' . $field . '-error"><span class="visually-hidden">! </span>' . h($errors[$field]) . '</p>'
            : '';
    };
    $invalid = static fn (string $field): string => isset($errors[$field]) ? ' aria-invalid="true"' : '';
    $describe = static fn (string $field, string $more = ''): string =>
        trim($more . (isset($errors[$field]) ? " $field-error" : ''));

    $list = '';
    if ($errors && $summary) {
        $items = '';
        foreach ($errors as $field => $text) {
            $items .= '<li><a href="#' . h($field) . '">' . h($text) . '</a></li>';
        }
        $list = '<div class="error-summary" role="alert"><p>' . h(t('problems')) . '</p><ul>' . $items . "</ul></div>\n";
    }

    $emailDesc = $describe('email', 'email-hint');
    $nameDesc = $describe('name');
    $consentDesc = $describe('consent');
    [$powAttrs, $powHtml] = pow_fields();
    return $list . <<<HTML
<form class="signup" method="post" action="{$action}"{$powAttrs}>
<input type="hidden" name="lang" value="{$lang}">
<div class="field{$cls($errors, 'email')}">
<label for="email">{$h(t('email_label'))}</label>
<p class="hint" id="email-hint">{$h(t('email_hint'))}</p>
{$err('email')}<input type="email" id="email" name="email" value="{$email}" required maxlength="254" autocomplete="email" spellcheck="false" autocapitalize="off" aria-describedby="{$emailDesc}"{$invalid('email')}>
</div>
<div class="field{$cls($errors, 'name')}">
<label for="name">{$h(t('name_label'))} <span class="optional">{$h(t('optional'))}</span></label>
{$err('name')}<input type="text" id="name" name="name" value="{$name}" maxlength="100" autocomplete="name"{$attr('aria-describedby', $nameDesc)}{$invalid('name')}>
</div>
<div class="field hp" aria-hidden="true">
<label for="website">{$h(t('honeypot_label'))}</label>
<input type="text" id="website" name="website" value="" tabindex="-1" autocomplete="off">
</div>
<div class="field consent{$cls($errors, 'consent')}">
{$err('consent')}<div class="check">
<input type="checkbox" id="consent" name="consent" value="yes" required{$checked}{$attr('aria-describedby', $consentDesc)}{$invalid('consent')}>
<label for="consent">{$h(t('consent_text'))}</label>
</div>
</div>
<p class="privacy">{$h(t('privacy'))}</p>
{$powHtml}<p class="actions"><button type="submit" class="button">{$h(t('submit'))}</button></p>
</form>
HTML;
}
