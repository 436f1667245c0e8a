<?php
/*
 * The one place this site talks to newsletterd: a request goes out as one
 * JSON line on the public Unix socket, the answer comes back as one line.
 *
 * Whatever goes wrong on the way (no socket, daemon not running, a timeout,
 * a garbled answer) ends up as an ordinary answer with state "error" and
 * error "unavailable", so that the pages only ever deal with answers.  The
 * reason goes to the server's error log, never to the visitor.
 *
 * Settings, read from the environment (php -S, Apache SetEnv) or from
 * $_SERVER (nginx fastcgi_param):
 *   NEWSLETTERD_SOCKET   path of the public socket (default /run/newsletterd/public.sock)
 *   NEWSLETTERD_TIMEOUT  seconds to wait for connecting and for the answer (default 5)
 */
declare(strict_types=1);

const NEWSLETTERD_DEFAULT_SOCKET = '/run/newsletterd/public.sock';
/* The daemon refuses request lines of 4 KiB and more, newline included. */
const NEWSLETTERD_LINE_MAX = 4095;
const NEWSLETTERD_STATES = ['pending', 'confirmed', 'expired', 'duplicate', 'unsubscribed', 'ok', 'error'];

function newsletterd_setting(string $name): ?string
{
    $v = $_SERVER[$name] ?? getenv($name);
    return is_string($v) && $v !== '' ? $v : null;
}

function newsletterd_socket_path(): string
{
    return newsletterd_setting('NEWSLETTERD_SOCKET') ?? NEWSLETTERD_DEFAULT_SOCKET;
}

function newsletterd_timeout(): float
{
    $t = newsletterd_setting('NEWSLETTERD_TIMEOUT');
    if ($t !== null && is_numeric($t) && (float)$t > 0) {
        return min((float)$t, 60.0);
    }
    return 5.0;
}

/* An answer standing in for one the daemon could not give. */
function newsletterd_failure(string $why, string $code = 'unavailable'): array
{
    error_log('newsletterd: ' . $why);
    return ['state' => 'error', 'error' => $code, 'message' => '', 'local' => true];
}

/*
 * Sends $request (an array with 'op' and the op's fields; null values are
 * left out) and returns the decoded answer ($answerMax: the longest answer
 * read, in bytes; an archive issue's can be megabytes).  The result always has a string
 * 'state' that is one of the protocol's states; error answers carry 'error'.
 */
function newsletterd_request(array $request, int $answerMax = 65536): array
{
    $request = array_filter($request, static fn ($v) => $v !== null);
    $line = json_encode($request, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
    if ($line === false) {
        return newsletterd_failure('cannot encode the request: ' . json_last_error_msg(), 'invalid_request');
    }
    if (strlen($line) >= NEWSLETTERD_LINE_MAX) {
        return newsletterd_failure('request too long for the protocol', 'invalid_request');
    }

    $path = newsletterd_socket_path();
    $timeout = newsletterd_timeout();
    $errno = 0;
    $errstr = '';
    $s = @stream_socket_client('unix://' . $path, $errno, $errstr, $timeout);
    if (!is_resource($s)) {
        return newsletterd_failure(sprintf('cannot connect to %s: %s', $path, $errstr !== '' ? $errstr : "error $errno"));
    }
    $secs = (int)floor($timeout);
    stream_set_timeout($s, $secs, (int)(($timeout - $secs) * 1e6));

    $data = $line . "\n";
    for ($off = 0, $len = strlen($data); $off < $len; $off += $n) {
        $n = @fwrite($s, substr($data, $off));
        if ($n === false || $n === 0) {
            fclose($s);
            return newsletterd_failure('cannot send the request to ' . $path);
        }
    }

    $answer = @fgets($s, $answerMax);
    $meta = stream_get_meta_data($s);
    fclose($s);
    if ($answer === false) {
        return newsletterd_failure(!empty($meta['timed_out'])
            ? sprintf('no answer within %.1f s', $timeout)
            : 'the daemon closed the connection without an answer');
    }
    $a = json_decode($answer, true);
    if (!is_array($a) || !is_string($a['state'] ?? null) || !in_array($a['state'], NEWSLETTERD_STATES, true)) {
        return newsletterd_failure('an answer that is not a protocol answer');
    }
    if ($a['state'] === 'error') {
        $a['error'] = is_string($a['error'] ?? null) ? $a['error'] : 'internal';
        error_log(sprintf('newsletterd: %s answered %s%s', $request['op'] ?? '?', $a['error'],
            is_string($a['detail'] ?? null) ? ' (' . $a['detail'] . ')' : ''));
    }
    if (!is_string($a['message'] ?? null)) {
        $a['message'] = '';
    }
    return $a;
}
