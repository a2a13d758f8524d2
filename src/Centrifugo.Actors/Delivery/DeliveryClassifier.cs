using System.Net;
using System.Net.Sockets;

namespace Centrifugo.Actors.Delivery;

/// <summary>What the client does with one HTTP exchange or one reply.</summary>
internal enum DeliveryDecision
{
    /// <summary>Centrifugo accepted the command.</summary>
    Delivered,
    /// <summary>Refused for good (bad request, unknown channel…): the command completes and is dead-lettered.</summary>
    Rejected,
    /// <summary>Temporary: retry the same command later (backoff), keep order.</summary>
    Retry,
    /// <summary>The node is misconfigured (URL, key): stop and stay red; retrying will not help until fixed.</summary>
    Stall,
    /// <summary>A /batch body was refused as a whole: send its commands one by one to find the bad one.</summary>
    Isolate,
}

internal readonly record struct Classification(DeliveryDecision Decision, int? Code, string Message);

/// <summary>
/// The single place that maps every delivery failure to a decision. Only error code 100
/// (also per channel inside a broadcast), transport errors, timeouts, 408/429 and 5xx are retried; 401/403/404/405
/// and other unexpected statuses mean misconfiguration; 400/413 and every other Centrifugo error code reject
/// the command. A non-200 body is read as Centrifugo's error only when its code and status are a pair Centrifugo
/// answers (<see cref="TransportStatusOf"/>); a proxy's or gateway's error body is classified by its status. Messages name the endpoint but
/// never carry the API key (it only ever travels in a header).
/// </summary>
internal static class DeliveryClassifier
{
    public const int InternalErrorCode = 100;

    /// <summary>A Centrifugo error object in a reply (top level, per batch reply, or per broadcast channel).</summary>
    public static Classification ForReplyError(int code, string? message) => code == InternalErrorCode
        ? new(DeliveryDecision.Retry, code, $"centrifugo error {code}: {message ?? "internal server error"}")
        : new(DeliveryDecision.Rejected, code, $"centrifugo error {code}: {message}");

    /// <summary>An HTTP status other than 200 (200 replies are classified by their body).</summary>
    public static Classification ForStatus(int status, bool batch, string method, string endpoint) => status switch
    {
        400 or 413 when batch => new(DeliveryDecision.Isolate, null, $"{status} {Reason(status)} from {endpoint}"),
        400 => new(DeliveryDecision.Rejected, null, $"400 Bad Request: request JSON does not match method {method}"),
        413 => new(DeliveryDecision.Rejected, null, $"413 Payload Too Large: request of method {method} is too large for {endpoint}"),
        401 => new(DeliveryDecision.Stall, null, $"401 Unauthorized from {endpoint}: api.key is wrong"),
        403 => new(DeliveryDecision.Stall, null, $"403 Forbidden from {endpoint}: check api.key and any proxy in front of Centrifugo"),
        404 => new(DeliveryDecision.Stall, null,
            $"404 Not Found from {endpoint}: api.url does not point at Centrifugo's server API (expected a prefix such as /api)"),
        405 => new(DeliveryDecision.Stall, null,
            $"405 Method Not Allowed from {endpoint}: api.url does not point at Centrifugo's server API"),
        408 or 429 => new(DeliveryDecision.Retry, null, $"{status} {Reason(status)} from {endpoint}"),
        >= 500 => new(DeliveryDecision.Retry, null, $"{status} {Reason(status)} from {endpoint}"),
        _ => new(DeliveryDecision.Stall, null, $"unexpected HTTP {status} {Reason(status)} from {endpoint}: check api.url"),
    };

    /// <summary>Statuses Centrifugo's transport error mode answers a per-method error with.</summary>
    public static bool MayCarryTransportError(int status) => status is 400 or 404 or 409 or 416 or 500;

    /// <summary>
    /// The status Centrifugo's transport error mode answers error <paramref name="code"/> with (its
    /// <c>MapErrorToHTTPCode</c>); 0 for a code outside Centrifugo's range 100–199, which Centrifugo never sends.
    /// </summary>
    public static int TransportStatusOf(int code) => code switch
    {
        < 100 or > 199 => 0,
        102 or 104 => 404,
        107 or 108 => 400,
        112 => 416,
        113 => 409,
        _ => 500,
    };

    /// <summary>A 200 whose body is not the reply we expect (not JSON, wrong shape, wrong reply count).</summary>
    public static Classification ForUnexpectedBody(string endpoint, string what) =>
        new(DeliveryDecision.Retry, null, $"unexpected response from {endpoint}: {what}");

    public static Classification ForTimeout(string endpoint, TimeSpan timeout) =>
        new(DeliveryDecision.Retry, null, $"timeout after {timeout.TotalMilliseconds:0} ms calling {endpoint}");

    /// <summary>Transport failures (refused, reset, DNS, TLS): always temporary.</summary>
    public static Classification ForException(Exception exception, string endpoint)
    {
        var socket = FindInner<SocketException>(exception);
        var detail = socket is not null ? socket.SocketErrorCode.ToString() : exception.GetBaseException().Message;
        return new(DeliveryDecision.Retry, null, $"cannot reach {endpoint}: {detail}");
    }

    public static FailureKind ToFailureKind(DeliveryDecision decision) => decision switch
    {
        DeliveryDecision.Retry => FailureKind.Temporary,
        DeliveryDecision.Stall => FailureKind.Configuration,
        _ => throw new ArgumentOutOfRangeException(nameof(decision), decision, "not a failure"),
    };

    private static string Reason(int status) => status switch
    {
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        _ => Enum.IsDefined(typeof(HttpStatusCode), status) ? SplitWords(((HttpStatusCode)status).ToString()) : "",
    };

    private static string SplitWords(string pascal) =>
        string.Concat(pascal.Select((c, i) => i > 0 && char.IsUpper(c) ? " " + c : c.ToString()));

    private static T? FindInner<T>(Exception? e)
        where T : Exception
    {
        for (var depth = 0; e is not null && depth < 8; depth++, e = e.InnerException)
        {
            if (e is T match)
            {
                return match;
            }
        }

        return null;
    }
}
