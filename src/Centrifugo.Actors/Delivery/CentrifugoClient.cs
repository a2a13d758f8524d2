using System.Buffers;
using System.Collections.Frozen;
using System.Text;
using System.Text.Json;
using Centrifugo.Actors.Configuration;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Delivery;

/// <summary>
/// HTTP server-API client (Centrifugo's <c>/api</c> and <c>/api/batch</c>). One pooled <see cref="HttpClient"/> per instance; thread-safe;
/// create one per node and share it. Batches go through POST /batch with parallel:false so Centrifugo runs them in order; a chunk
/// of one command uses POST /{method}. Every failure is mapped by <see cref="DeliveryClassifier"/>.
/// </summary>
internal sealed class CentrifugoClient : ICentrifugoClient, IDisposable
{
    // A Centrifugo reply to a batch of N commands is O(N) small objects; anything this big is not Centrifugo.
    private const int MaxResponseBytes = 16 * 1024 * 1024;
    // A transport-mode error body is {"code":N,"message":"…"}; anything larger is not one.
    private const int MaxErrorBodyBytes = 64 * 1024;

    /// <summary>
    /// After this many consecutive commands rejected by a non-200 reply (an HTTP 400/413 alone, or an error body of
    /// Centrifugo's transport error mode, which a proxy could imitate), with no command accepted or refused inside a
    /// 200 reply in between, the endpoint is taken for something other than Centrifugo (a proxy, a wrong api.url):
    /// further ones stall loudly instead of being dead-lettered.
    /// </summary>
    internal const int StatusOnlyRejectionLimit = 10;
    private int _statusOnlyRejections;
    private static readonly byte[] BatchHead = """{"commands":["""u8.ToArray();
    private static readonly byte[] BatchTail = """],"parallel":false}"""u8.ToArray();

    private static readonly FrozenDictionary<string, byte[]> CommandHeads = ApiMethods.Accepted
        .ToFrozenDictionary(m => m, CommandHead, StringComparer.Ordinal);

    private readonly HttpClient _http;
    private readonly ILogger<CentrifugoClient> _logger;
    private readonly TimeSpan _timeout;
    private readonly int _maxBatchSize;
    private readonly Uri _baseUri;
    private readonly string _displayBase;
    private readonly Uri _batchUri;
    private readonly FrozenDictionary<string, Uri> _methodUris;

    public CentrifugoClient(ApiOptions options, ILogger<CentrifugoClient> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxBatchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.Timeout, TimeSpan.Zero);

        _logger = logger;
        _timeout = options.Timeout;
        _maxBatchSize = options.MaxBatchSize;
        var baseUri = new Uri(options.Url.TrimEnd('/'), UriKind.Absolute);
        _baseUri = baseUri;
        // userinfo and query may hold credentials (Centrifugo accepts ?api_key=): never part of a message.
        _displayBase = baseUri.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped).TrimEnd('/');
        _batchUri = Endpoint(baseUri, "batch");
        _methodUris = ApiMethods.Accepted.ToFrozenDictionary(m => m, m => Endpoint(baseUri, m), StringComparer.Ordinal);

        var handler = new SocketsHttpHandler
        {
            // Recycle connections so DNS changes (Kubernetes Service endpoints) are picked up.
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
            MaxConnectionsPerServer = int.MaxValue,
            ConnectTimeout = options.Timeout,
            UseCookies = false,
            // A redirect means api.url is wrong; following it would also forward X-API-Key to another host.
            AllowAutoRedirect = false,
            AutomaticDecompression = System.Net.DecompressionMethods.None,
        };
        _http = new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.TryAddWithoutValidation("X-API-Key", options.Key);
    }

    public async Task<DeliveryResult> DeliverAsync(
        IReadOnlyList<ApiCommand> commands, CancellationToken cancellationToken, Func<bool>? mayStart = null, DeliveryWindow? window = null)
    {
        ArgumentNullException.ThrowIfNull(commands);
        var completed = new List<CommandOutcome>(commands.Count);
        var start = 0;
        while (start < commands.Count)
        {
            if (mayStart is not null && !mayStart())
            {
                return new DeliveryResult(completed, new DeliveryFailure(FailureKind.Temporary,
                    "not sent: this owner's fence ran out before the request (a slow Centrifugo or a paused process): " +
                    "the partition's outbox lock or Kafka assignment may be another owner's now, so the rest is read again instead"));
            }
            var count = WithinBodyLimit(
                commands, start, Math.Min(Math.Min(_maxBatchSize, window?.Limit ?? int.MaxValue), commands.Count - start));
            var failure = count == 1
                ? await SendSingleAsync(commands[start], completed, cancellationToken, mayStart)
                : await SendBatchAsync(commands, start, count, completed, cancellationToken, mayStart);
            if (failure is not null)
            {
                if (failure.Kind == FailureKind.Temporary)
                {
                    window?.Failed(count);
                }
                return new DeliveryResult(completed, failure);
            }

            window?.Succeeded(_maxBatchSize);
            start += count;
        }

        return new DeliveryResult(completed, null);
    }

    public void Dispose() => _http.Dispose();

    /// <summary>{base path}/{method}, keeping a query string (e.g. ?api_key=) that api.url may carry.</summary>
    private static Uri Endpoint(Uri baseUri, string method)
    {
        return new UriBuilder(baseUri) { Path = baseUri.AbsolutePath.TrimEnd('/') + "/" + method }.Uri;
    }

    /// <summary>Sends one command through POST /{method}; adds its outcome to <paramref name="completed"/> or returns the
    /// failure.</summary>
    private async Task<DeliveryFailure?> SendSingleAsync(
        ApiCommand command, List<CommandOutcome> completed, CancellationToken cancellationToken, Func<bool>? mayStart = null)
    {
        var uri = _methodUris.TryGetValue(command.Method, out var known) ? known : Endpoint(_baseUri, command.Method);
        var endpoint = _displayBase + "/" + command.Method;
        // The body is always the client's own copy: a request may point into a pooled buffer its source returns as
        // soon as delivery ends (a Kafka record batch), while a send cut short by a timeout may still be writing.
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, IdempotencyKeys.WrittenLength(command)));
        var length = IdempotencyKeys.Write(command, buffer);
        var exchange = await SendPooledAsync(uri, buffer, length, endpoint, mayStart, cancellationToken);
        Classification classification;
        try
        {
            classification = exchange.Failure
                ?? (exchange.Status != 200
                    ? CentrifugoReplyParser.TransportError(exchange.Body.Span, exchange.Status)
                      ?? DeliveryClassifier.ForStatus(exchange.Status, batch: false, command.Method, endpoint)
                    : CentrifugoReplyParser.Single(exchange.Body.Span, command.Method, endpoint));
        }
        finally
        {
            exchange.Return();
        }

        return Apply(classification, completed, command.Method, nonOk: exchange.Failure is null && exchange.Status != 200);
    }

    /// <summary>POSTs a JSON body held in a pooled buffer, and returns the buffer to the pool when that is safe.</summary>
    private async Task<Exchange> SendPooledAsync(
        Uri uri, byte[] buffer, int length, string endpoint, Func<bool>? mayStart, CancellationToken cancellationToken)
    {
        Exchange exchange;
        using (var content = new FencedContent(buffer.AsMemory(0, length), mayStart))
        {
            content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
            exchange = await ExchangeAsync(uri, content, endpoint, cancellationToken);
        }

        // SocketsHttpHandler (HTTP/1.1) finishes sending the request body before SendAsync returns, so the buffer
        // is free again; after a transport failure a send may still be in flight, so let the GC have it then.
        if (exchange.Failure is null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return exchange;
    }

    private async Task<DeliveryFailure?> SendBatchAsync(
        IReadOnlyList<ApiCommand> commands, int start, int count, List<CommandOutcome> completed, CancellationToken cancellationToken,
        Func<bool>? mayStart)
    {
        var endpoint = _displayBase + "/batch";
        var (buffer, length) = BuildBatchBody(commands, start, count);
        var exchange = await SendPooledAsync(_batchUri, buffer, length, endpoint, mayStart, cancellationToken);

        if (exchange.Failure is { } transport)
        {
            exchange.Return();
            return Apply(transport, completed, "batch");
        }

        if (exchange.Status != 200)
        {
            exchange.Return();
            var status = DeliveryClassifier.ForStatus(exchange.Status, batch: true, "batch", endpoint);
            if (status.Decision != DeliveryDecision.Isolate)
            {
                return Apply(status, completed, "batch");
            }

            DeliveryLog.Isolating(_logger, count, status.Message);
            for (var i = start; i < start + count; i++)
            {
                var failure = await SendSingleAsync(commands[i], completed, cancellationToken, mayStart);
                if (failure is not null)
                {
                    return failure;
                }
            }

            return null;
        }

        // Pooled: the replies are read only here (clearing drops the reasons' strings).
        var replies = ArrayPool<Classification>.Shared.Rent(count);
        try
        {
            try
            {
                if (CentrifugoReplyParser.Batch(exchange.Body.Span, commands, start, count, endpoint, replies.AsSpan(0, count)) is { } bad)
                {
                    return Apply(bad, completed, "batch");
                }
            }
            finally
            {
                exchange.Return();
            }

            for (var i = 0; i < count; i++)
            {
                var failure = Apply(replies[i], completed, commands[start + i].Method);
                if (failure is not null)
                {
                    return failure;
                }
            }

            return null;
        }
        finally
        {
            ArrayPool<Classification>.Shared.Return(replies, clearArray: true);
        }
    }

    /// <param name="nonOk">The classification comes from a non-200 reply (see <see cref="StatusOnlyRejectionLimit"/>).</param>
    private DeliveryFailure? Apply(Classification classification, List<CommandOutcome> completed, string method, bool nonOk = false)
    {
        if (classification.Decision == DeliveryDecision.Rejected && nonOk)
        {
            var streak = Interlocked.Increment(ref _statusOnlyRejections);
            if (streak > StatusOnlyRejectionLimit)
            {
                classification = new Classification(DeliveryDecision.Stall, null,
                    $"{streak - 1} commands in a row were rejected by a non-200 reply ({classification.Message}), none accepted: " +
                    "something other than Centrifugo may answer at api.url (a proxy with a body limit, a gateway, a wrong URL); " +
                    "nothing more is dead-lettered until a command gets through");
            }
        }
        else if (classification.Decision is DeliveryDecision.Delivered or DeliveryDecision.Rejected)
        {
            Volatile.Write(ref _statusOnlyRejections, 0);
        }

        switch (classification.Decision)
        {
            case DeliveryDecision.Delivered:
                completed.Add(classification.Message.Length == 0
                    ? CommandOutcome.Accepted
                    : new CommandOutcome(true, null, classification.Message));
                return null;
            case DeliveryDecision.Rejected:
                DeliveryLog.CommandRejected(_logger, method, classification.Message);
                completed.Add(CommandOutcome.Rejected(classification.Code, classification.Message));
                return null;
            case DeliveryDecision.Stall:
                DeliveryLog.ApiMisconfigured(_logger, classification.Message);
                return new DeliveryFailure(DeliveryClassifier.ToFailureKind(classification.Decision), classification.Message);
            case DeliveryDecision.Retry:
                DeliveryLog.TemporaryFailure(_logger, method, classification.Message);
                return new DeliveryFailure(DeliveryClassifier.ToFailureKind(classification.Decision), classification.Message);
            default:
                throw new InvalidOperationException($"decision {classification.Decision} cannot complete a command");
        }
    }

    /// <summary>Largest /batch body built from several commands; one larger command goes alone.</summary>
    internal const long MaxBatchBodyBytes = 64L << 20;

    /// <summary>How many of the <paramref name="count"/> commands from <paramref name="start"/> fit one body of
    /// <see cref="MaxBatchBodyBytes"/> (at least one).</summary>
    internal static int WithinBodyLimit(IReadOnlyList<ApiCommand> commands, int start, int count)
    {
        var size = (long)(BatchHead.Length + BatchTail.Length);
        for (var i = 0; i < count; i++)
        {
            size += BodyBytes(commands[start + i]);
            if (size > MaxBatchBodyBytes && i > 0)
            {
                return i;
            }
        }

        return count;
    }

    private static long BodyBytes(ApiCommand command) => HeadOf(command.Method).Length + (long)IdempotencyKeys.WrittenLength(command) + 2;

    internal static (byte[] Buffer, int Length) BuildBatchBody(IReadOnlyList<ApiCommand> commands, int start, int count)
    {
        var size = (long)(BatchHead.Length + BatchTail.Length);
        for (var i = start; i < start + count; i++)
        {
            size += BodyBytes(commands[i]);
        }

        var buffer = ArrayPool<byte>.Shared.Rent(checked((int)size));
        var span = buffer.AsSpan();
        BatchHead.CopyTo(span);
        var at = BatchHead.Length;
        for (var i = start; i < start + count; i++)
        {
            if (i > start)
            {
                span[at++] = (byte)',';
            }

            var head = HeadOf(commands[i].Method);
            head.CopyTo(span[at..]);
            at += head.Length;
            // The request bytes go in verbatim (the decoders guarantee a single JSON object), a derived
            // idempotency key added as its last member.
            at += IdempotencyKeys.Write(commands[i], span[at..]);
            span[at++] = (byte)'}';
        }

        BatchTail.CopyTo(span[at..]);
        return (buffer, at + BatchTail.Length);
    }

    private static byte[] HeadOf(string method) =>
        CommandHeads.TryGetValue(method, out var head) ? head : CommandHead(method);

    private static byte[] CommandHead(string method) => Encoding.UTF8.GetBytes("{" + JsonSerializer.Serialize(method) + ":");

    private async Task<Exchange> ExchangeAsync(Uri uri, HttpContent content, string endpoint, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_timeout);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, uri) { Content = content };
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var status = (int)response.StatusCode;
            var declared = response.Content.Headers.ContentLength;
            if (status != 200)
            {
                // Centrifugo's transport error mode answers a per-method error with a 4xx/5xx and the bare error
                // object as body: read small bodies so the command is classified by its code, not by the status.
                if (!DeliveryClassifier.MayCarryTransportError(status) || declared is null or 0 or > MaxErrorBodyBytes)
                {
                    return new Exchange(status, null, 0, null);
                }
                var errorBody = ArrayPool<byte>.Shared.Rent((int)declared.Value);
                var got = 0;
                await using (var errorStream = await response.Content.ReadAsStreamAsync(timeout.Token))
                {
                    int n;
                    while (got < declared.Value
                        && (n = await errorStream.ReadAsync(errorBody.AsMemory(got, (int)declared.Value - got), timeout.Token)) > 0)
                    {
                        got += n;
                    }
                }
                return new Exchange(status, errorBody, got, null);
            }

            if (declared > MaxResponseBytes)
            {
                return new Exchange(status, null, 0, DeliveryClassifier.ForUnexpectedBody(endpoint, $"response of {declared} bytes"));
            }

            var buffer = ArrayPool<byte>.Shared.Rent(declared is > 0 ? (int)declared.Value : 4096);
            var length = 0;
            await using var stream = await response.Content.ReadAsStreamAsync(timeout.Token);
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (length >= MaxResponseBytes)
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                        return new Exchange(status, null, 0, DeliveryClassifier.ForUnexpectedBody(endpoint, "response too large"));
                    }

                    var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                var read = await stream.ReadAsync(buffer.AsMemory(length), timeout.Token);
                if (read == 0)
                {
                    break;
                }

                length += read;
            }

            return new Exchange(status, buffer, length, null);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new Exchange(0, null, 0, DeliveryClassifier.ForTimeout(endpoint, _timeout));
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            return new Exchange(0, null, 0, DeliveryClassifier.ForException(e, endpoint));
        }
    }

    /// <summary>One HTTP exchange: a status with a pooled body, or a transport-level classification.</summary>
    private readonly record struct Exchange(int Status, byte[]? Buffer, int Length, Classification? Failure)
    {
        public ReadOnlyMemory<byte> Body => Buffer is null ? default : Buffer.AsMemory(0, Length);

        public void Return()
        {
            if (Buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(Buffer);
            }
        }
    }
}

/// <summary>
/// A request body that asks the outbox's transaction fence once more at the last moment, as the body is written to the
/// connection: a process paused after <see cref="ICentrifugoClient.DeliverAsync"/> checked the fence but before the
/// request left would otherwise send rows read before the pause (the next owner may have delivered them and newer ones
/// meanwhile). Refused, the write throws: the server sees a body shorter than its Content-Length and never runs the
/// request, and the delivery ends with a transport (temporary) failure. What remains is a pause inside this write.
/// </summary>
internal sealed class FencedContent(ReadOnlyMemory<byte> body, Func<bool>? mayStart) : HttpContent
{
    protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(
        Stream stream, System.Net.TransportContext? context, CancellationToken cancellationToken)
    {
        if (mayStart is not null && !mayStart())
        {
            throw new IOException("not sent: this owner's fence (outbox transaction fence, Kafka assignment and freeze check) " +
                "ran out just before the request was written (process paused?)");
        }
        await stream.WriteAsync(body, cancellationToken);
    }

    protected override bool TryComputeLength(out long length)
    {
        length = body.Length;
        return true;
    }
}

