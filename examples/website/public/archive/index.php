<?php
/*
 * The newsletter archive (op "archive"), one script for its paths (php -S
 * and most servers hand /archive/... to this index.php with PATH_INFO):
 *
 *   /archive[?before=ID]  the published issues, newest first, 20 a page
 *   /archive/ID           one issue: subject, date, and its HTML part in a
 *                         sandboxed frame (no scripts, an origin of its
 *                         own), or else its text part
 *   /archive/ID/html      that HTML part alone, for the frame, under a
 *                         policy that lets it load nothing and run nothing
 *   /archive/feed         an Atom feed (RFC 4287) of the last 20 issues
 *
 * What the daemon answers carries no personal data: the archive copy of an
 * issue has no name and no token in it.
 */
declare(strict_types=1);

require __DIR__ . '/../../lib/site.php';
site_boot('archive');

const ARCHIVE_PAGE = 20;
/* An issue's answer holds both its parts: up to a few megabytes. */
const ARCHIVE_ANSWER_MAX = 16 << 20;

if (site_method() !== 'GET') {
    error_page(['error' => 'method']);
}
$lang = site_lang();
$path = (string)($_SERVER['PATH_INFO'] ?? '');
$path = rtrim($path, '/');

function archive_date(string $rfc3339): string
{
    $t = strtotime($rfc3339);
    return $t === false ? $rfc3339 : date(t('date_format'), $t);
}

function archive_url(string $rest = '', array $query = []): string
{
    if (site_lang() === 'en') {
        $query['lang'] = 'en';
    }
    return site_url('archive' . $rest, $query);
}

function archive_feed_link(): string
{
    return "\n" . '<link rel="alternate" type="application/atom+xml" title="' . h(t('archive_title'))
        . '" href="' . h(site_url('archive/feed')) . '">';
}

function archive_not_found(): never
{
    state_page('error', t('error_title'), t('archive_unknown'),
        link_button(archive_url(), t('archive_back'), true), 404);
}

/* The daemon's answer for one issue, or the page that says why not. */
function archive_issue(string $id): array
{
    if (!preg_match('/\A[1-9][0-9]{0,17}\z/', $id)) {
        archive_not_found();
    }
    $a = newsletterd_request(['op' => 'archive', 'issue' => (int)$id, 'lang' => site_lang()], ARCHIVE_ANSWER_MAX);
    if ($a['state'] === 'error') {
        if ($a['error'] === 'unknown_issue') {
            archive_not_found();
        }
        error_page($a);
    }
    $issue = $a['issue'] ?? null;
    if (!is_array($issue) || !is_string($issue['subject'] ?? null) || !is_string($issue['text'] ?? null)) {
        error_page(['error' => 'internal']);
    }
    return $issue;
}

/* An absolute URL of this site, for the feed. */
function archive_absolute(string $url): string
{
    $https = ($_SERVER['HTTPS'] ?? '') !== '' && ($_SERVER['HTTPS'] ?? '') !== 'off';
    $host = (string)($_SERVER['HTTP_HOST'] ?? 'localhost');
    if (!preg_match('/\A[A-Za-z0-9.:\[\]-]{1,255}\z/', $host)) {
        $host = 'localhost';
    }
    return ($https ? 'https' : 'http') . '://' . $host . $url;
}

function archive_xml(string $s): string
{
    return htmlspecialchars($s, ENT_QUOTES | ENT_SUBSTITUTE | ENT_XML1, 'UTF-8');
}

if ($path === '/feed') {
    $a = newsletterd_request(['op' => 'archive', 'limit' => ARCHIVE_PAGE, 'lang' => $lang]);
    if ($a['state'] !== 'ok' || !is_array($a['issues'] ?? null)) {
        error_page($a['state'] === 'error' ? $a : ['error' => 'internal']);
    }
    $self = archive_absolute(site_url('archive/feed'));
    $updated = '1970-01-01T00:00:00Z';
    $entries = '';
    foreach ($a['issues'] as $i) {
        $id = (int)($i['id'] ?? 0);
        $sent = (string)($i['sent_at'] ?? '');
        if ($updated === '1970-01-01T00:00:00Z') {
            $updated = $sent;       /* newest first */
        }
        $link = archive_absolute(site_url('archive/' . $id));
        $entries .= "  <entry>\n"
            . '    <id>' . archive_xml($link) . "</id>\n"
            . '    <title>' . archive_xml((string)($i['subject'] ?? '')) . "</title>\n"
            . '    <updated>' . archive_xml($sent) . "</updated>\n"
            . '    <published>' . archive_xml($sent) . "</published>\n"
            . '    <link rel="alternate" type="text/html" href="' . archive_xml($link) . "\"/>\n"
            . "  </entry>\n";
    }
    header('Content-Type: application/atom+xml; charset=utf-8');
    header('Cache-Control: max-age=300');
    header('X-Content-Type-Options: nosniff');
    echo '<?xml version="1.0" encoding="utf-8"?>' . "\n"
        . '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="' . $lang . "\">\n"
        . '  <id>' . archive_xml($self) . "</id>\n"
        . '  <title>' . archive_xml(t('site_name') . ' – ' . t('archive_title')) . "</title>\n"
        . '  <updated>' . archive_xml($updated) . "</updated>\n"
        . '  <author><name>' . archive_xml(t('site_name')) . "</name></author>\n"
        . '  <link rel="self" type="application/atom+xml" href="' . archive_xml($self) . "\"/>\n"
        . '  <link rel="alternate" type="text/html" href="' . archive_xml(archive_absolute(site_url('archive'))) . "\"/>\n"
        . $entries
        . "</feed>\n";
    $GLOBALS['site']['done'] = true;
    ob_end_flush();
    exit;
}

if (preg_match('#\A/([^/]+)/html\z#', $path, $m)) {
    /* the frame's document: a sandbox of its own even when opened directly */
    $issue = archive_issue($m[1]);
    if (!is_string($issue['html'] ?? null)) {
        archive_not_found();
    }
    header('Content-Type: text/html; charset=utf-8');
    header('Cache-Control: no-store');
    header('X-Content-Type-Options: nosniff');
    header('Referrer-Policy: no-referrer');
    header("Content-Security-Policy: sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-ancestors 'self'");
    echo $issue['html'];
    $GLOBALS['site']['done'] = true;
    ob_end_flush();
    exit;
}

if (preg_match('#\A/([^/]+)\z#', $path, $m)) {
    $issue = archive_issue($m[1]);
    $h = 'h';
    $id = (int)$issue['id'];
    $GLOBALS['site']['page'] = 'archive/' . $id;     /* the language switch stays on the issue */
    $date = archive_date((string)($issue['sent_at'] ?? ''));
    if (is_string($issue['html'] ?? null)) {
        /* sandbox without allow-scripts: nothing in the issue runs */
        $body = '<iframe class="issue-frame" sandbox="" referrerpolicy="no-referrer" title="' . h(t('archive_frame')) . '" src="'
            . h(site_url('archive/' . $id . '/html')) . '"></iframe>';
    } else {
        $body = '<pre class="issue-text">' . h($issue['text']) . '</pre>';
    }
    render_page($issue['subject'], <<<HTML
<article class="card issue" data-state="archive" data-archive-issue="{$id}" aria-labelledby="title">
<p class="meta"><a href="{$h(archive_url())}">{$h(t('archive_title'))}</a></p>
<h1 id="title">{$h($issue['subject'])}</h1>
<p class="meta">{$h(t('archive_sent'))} <time datetime="{$h((string)($issue['sent_at'] ?? ''))}">{$h($date)}</time></p>
{$body}
<p class="actions"><a class="button secondary" href="{$h(archive_url())}">{$h(t('archive_back'))}</a>
<a class="button" href="{$h(site_form_url())}">{$h(t('archive_subscribe'))}</a></p>
</article>
HTML, 200, [], true, "'self'", archive_feed_link());
}

if ($path !== '') {
    archive_not_found();
}

/* the list, a page at a time: one more asked for than shown says whether older ones exist */
$before = param($_GET, 'before');
if ($before !== '' && !preg_match('/\A[1-9][0-9]{0,17}\z/', $before)) {
    archive_not_found();
}
$a = newsletterd_request(['op' => 'archive', 'limit' => ARCHIVE_PAGE + 1,
                          'before' => $before !== '' ? (int)$before : null, 'lang' => $lang]);
if ($a['state'] !== 'ok' || !is_array($a['issues'] ?? null)) {
    error_page($a['state'] === 'error' ? $a : ['error' => 'internal']);
}
$issues = array_slice($a['issues'], 0, ARCHIVE_PAGE);
$more = count($a['issues']) > ARCHIVE_PAGE;
$items = '';
foreach ($issues as $i) {
    $id = (int)($i['id'] ?? 0);
    $sent = (string)($i['sent_at'] ?? '');
    $items .= '<li data-archive-issue="' . $id . '"><a href="' . h(archive_url('/' . $id)) . '">'
        . h((string)($i['subject'] ?? '')) . '</a> <time datetime="' . h($sent) . '">' . h(archive_date($sent))
        . "</time></li>\n";
}
$list = $items !== '' ? "<ul class=\"archive-list\">\n$items</ul>" : '<p>' . h(t('archive_empty')) . '</p>';
$nav = '';
if ($more) {
    $last = (int)end($issues)['id'];
    $nav .= '<a class="button secondary" rel="next" href="' . h(archive_url('', ['before' => $last])) . '">' . h(t('archive_older')) . '</a> ';
}
if ($before !== '') {
    $nav .= '<a class="button secondary" href="' . h(archive_url()) . '">' . h(t('archive_newer')) . '</a> ';
}
$h = 'h';
render_page(t('archive_title'), <<<HTML
<section class="card archive" data-state="archive" aria-labelledby="title">
<h1 id="title">{$h(t('archive_title'))}</h1>
<p class="lead">{$h(t('archive_intro'))}</p>
{$list}
<p class="actions">{$nav}<a class="button" href="{$h(site_form_url())}">{$h(t('archive_subscribe'))}</a></p>
<p class="feed"><a href="{$h(site_url('archive/feed'))}" type="application/atom+xml">{$h(t('archive_feed'))}</a></p>
</section>
HTML, 200, $before !== '' ? ['before' => $before] : [], true, "'none'", archive_feed_link());
