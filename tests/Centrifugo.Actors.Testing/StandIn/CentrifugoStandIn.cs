using System.Buffers;
using System.Buffers.Text;
using System.IO.Pipelines;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;

namespace Centrifugo.Actors.Testing.StandIn;

/// <summary>
/// In-process stand-in for Centrifugo's HTTP server API (spec §7), strict about paths, methods, auth and request
/// decoding, with thread-safe fault injection and a record of accepted commands.
/// Not implemented: legacy POST /api (404), map_* and shared_poll_publish (404 / batch 104).
/// </summary>
internal sealed class CentrifugoStandIn : IAsyncDisposable
{
    private static readonly byte[] NotFoundBody = "404 page not found\n"u8.ToArray();
    private static readonly byte[] BadRequestBody = "Bad Request\n"u8.ToArray();

    private readonly StandInOptions _options;
    private readonly byte[] _key;
    private readonly SemaphoreSlim _lifecycle = new(1, 1);
    private readonly Lock _faults = new();
    private readonly Lock _received = new();
    private readonly List<ReceivedCommand> _commands = [];
    private readonly List<(long Count, TaskCompletionSource Done)> _waiters = [];
    private readonly long[] _statusCounts = new long[600];
    private readonly long _started = Environment.TickCount64;
    private WebApplication? _app;
    private long _receivedCount;
    private long _rejectedCount;
    private long _droppedConnections;
    private long _latencyTicks;
    private long _responseDelayTicks;
    private int _failNext;
    private int _failOneIn;
    private Random _failRandom = new(1);
    private int _failOneInCode = 100;
    private int _failNextCode = 100;
    private int _failNextSkip;
    private int _failBroadcastChannel;
    private long _failEvery;
    private long _failEveryCode = 100;
    private long _failEveryCounter;
    private long _failEveryInjected;
    private int _failRequests;
    private int _failRequestsStatus;
    private byte[]? _failRequestsBody;
    private int _dropConnections;
    private readonly Dictionary<string, int> _failChannels = new(StringComparer.Ordinal);
    // Set once a channel failure was ever asked for: commands skip the shared lock until then (benchmarks).
    private volatile bool _anyChannelFailures;
    private readonly Lock _idempotency = new();
    private readonly Dictionary<(string Channel, string Key), long> _seenKeys = [];
    private readonly List<int> _requestSizes = [];
    private int _sweepAt = 100_000;
    private long _commandsReceived;
    private long _publications;
    private long _suppressedPublications;

    private CentrifugoStandIn(StandInOptions options)
    {
        _options = options;
        ApiKey = options.ApiKey ?? Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
        _key = Encoding.UTF8.GetBytes(ApiKey);
        Port = options.Port;
    }

    /// <summary>Base URL of the server API, e.g. http://127.0.0.1:PORT/api (what api.url is set to).</summary>
    public string Url => $"http://127.0.0.1:{Port}{_options.Prefix}";

    public string ApiKey { get; }

    public int Port { get; private set; }

    /// <summary>Added to every request before it is handled.</summary>
    public TimeSpan Latency
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _latencyTicks));
        set => Interlocked.Exchange(ref _latencyTicks, value.Ticks);
    }

    /// <summary>
    /// Added to every 200 response AFTER its commands were executed and recorded (unlike <see cref="Latency"/>,
    /// which delays before anything happens): the client has "dispatched" but not yet seen the reply, so a test
    /// can kill it deterministically between dispatch and commit. The wait ends early if the client disconnects.
    /// </summary>
    public TimeSpan ResponseDelay
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _responseDelayTicks));
        set => Interlocked.Exchange(ref _responseDelayTicks, value.Ticks);
    }

    public static async Task<CentrifugoStandIn> StartNewAsync(StandInOptions? options = null, CancellationToken cancellationToken = default)
    {
        var standIn = new CentrifugoStandIn(options ?? new StandInOptions());
        await standIn.StartAsync(cancellationToken);
        return standIn;
    }

    /// <summary>Runs a stand-in until <paramref name="cancellationToken"/> fires (manual demos).</summary>
    public static async Task RunAsync(int port, string apiKey, CancellationToken cancellationToken)
    {
        await using var standIn = await StartNewAsync(
            new StandInOptions { Port = port, ApiKey = apiKey, RecordCommands = false }, cancellationToken);
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // normal shutdown
        }
    }

    /// <summary>Opens the listening socket (again on the same port after <see cref="StopAsync"/>).</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        await _lifecycle.WaitAsync(cancellationToken);
        try
        {
            if (_app is not null)
            {
                return;
            }

            var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
            builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
            {
                kestrel.AddServerHeader = false;
                kestrel.Limits.MaxRequestBodySize = null;
                kestrel.Listen(IPAddress.Loopback, Port, listen => listen.Protocols = HttpProtocols.Http1);
            });
            var app = builder.Build();
            app.Run(HandleAsync);
            await app.StartAsync(cancellationToken);
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            Port = new Uri(address).Port;
            _app = app;
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Closes the listening socket and open connections: clients get "connection refused" until
    /// <see cref="StartAsync"/>.</summary>
    public async Task StopAsync()
    {
        await _lifecycle.WaitAsync();
        try
        {
            if (_app is null)
            {
                return;
            }

            using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2)))
            {
                await _app.StopAsync(grace.Token);
            }

            await _app.DisposeAsync();
            _app = null;
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Stops, waits <paramref name="duration"/>, starts again on the same port.</summary>
    public async Task SimulateOutageAsync(TimeSpan duration, CancellationToken cancellationToken = default)
    {
        await StopAsync();
        try
        {
            await Task.Delay(duration, cancellationToken);
        }
        finally
        {
            await StartAsync(CancellationToken.None);
        }
    }

    /// <summary>
    /// After letting <paramref name="skip"/> commands through, the next <paramref name="count"/> commands (counted
    /// one by one, also inside batches) get <paramref name="errorCode"/>. A new call replaces the previous one.
    /// </summary>
    public void FailNext(int count, int errorCode = 100, int skip = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegative(skip);
        lock (_faults)
        {
            _failNext = count;
            _failNextSkip = count > 0 ? skip : 0;
            _failNextCode = errorCode;
        }
    }

    /// <summary>
    /// From now on each command (counted one by one, also inside batches, retries included) gets
    /// <paramref name="errorCode"/> with probability 1/<paramref name="oneIn"/>, drawn from a generator seeded with
    /// <paramref name="seed"/> (repeatable): a steady error rate. 0 turns it off.
    /// </summary>
    public void FailOneIn(int oneIn, int errorCode = 100, int seed = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(oneIn);
        lock (_faults)
        {
            _failOneIn = oneIn;
            _failRandom = new Random(seed);
            _failOneInCode = errorCode;
        }
    }

    /// <summary>
    /// The next <paramref name="count"/> commands naming <paramref name="channel"/> (its channel, or any of a broadcast's)
    /// get error 100; other channels are unaffected. A new call for the same channel replaces the previous count.
    /// </summary>
    public void FailChannel(string channel, int count)
    {
        ArgumentNullException.ThrowIfNull(channel);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        lock (_faults)
        {
            _failChannels[channel] = count;
            _anyChannelFailures = true;
        }
    }

    /// <summary>
    /// From now on every <paramref name="period"/>-th command (counted one by one over all requests and batches,
    /// retries included) gets <paramref name="errorCode"/>, like a Centrifugo that fails now and then; 0 turns it
    /// off. Deterministic in count (not in which command, which depends on arrival order); combines with the
    /// other injections (they are checked first). <see cref="PeriodicFailures"/> counts what it injected.
    /// </summary>
    public void FailEvery(int period, int errorCode = 100)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(period);
        ArgumentOutOfRangeException.ThrowIfLessThan(errorCode, 100);
        Interlocked.Exchange(ref _failEveryCode, errorCode);
        Interlocked.Exchange(ref _failEveryCounter, 0);
        Interlocked.Exchange(ref _failEvery, period);
    }

    /// <summary>Commands failed by <see cref="FailEvery"/> so far.</summary>
    public long PeriodicFailures => Interlocked.Read(ref _failEveryInjected);

    /// <summary>The next <paramref name="count"/> broadcasts get a per-channel error 100 on their first channel.</summary>
    public void FailNextBroadcastChannel(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        Volatile.Write(ref _failBroadcastChannel, count);
    }

    /// <summary>
    /// The next <paramref name="count"/> requests are answered with <paramref name="httpStatus"/> before anything else:
    /// a plain-text reason phrase, or <paramref name="jsonBody"/> as <c>application/json</c> (a proxy's or API gateway's
    /// own error body, e.g. <c>{"code":500,"message":"…"}</c>). 0 turns it off.
    /// </summary>
    public void FailNextRequests(int count, int httpStatus, string? jsonBody = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfLessThan(httpStatus, 100);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(httpStatus, 599);
        lock (_faults)
        {
            _failRequests = count;
            _failRequestsStatus = httpStatus;
            _failRequestsBody = jsonBody is null ? null : Encoding.UTF8.GetBytes(jsonBody);
        }
    }

    /// <summary>The next <paramref name="count"/> requests have their TCP connection aborted without a response.</summary>
    public void DropNextConnections(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        Volatile.Write(ref _dropConnections, count);
    }

    /// <summary>Snapshot of the accepted commands, in acceptance order.</summary>
    public IReadOnlyList<ReceivedCommand> Received
    {
        get
        {
            lock (_received)
            {
                return [.. _commands];
            }
        }
    }

    public IReadOnlyList<ReceivedCommand> ReceivedFor(string channel) =>
        Received.Where(c => c.Channels.Contains(channel, StringComparer.Ordinal)).ToList();

    /// <summary>Commands accepted so far (counted also when <see cref="StandInOptions.RecordCommands"/> is false).</summary>
    public long ReceivedCount => Interlocked.Read(ref _receivedCount);

    /// <summary>Every command of every decoded request, accepted or not (the raw count a node sent).</summary>
    public long CommandsReceived => Interlocked.Read(ref _commandsReceived);

    /// <summary>
    /// Publications that reached subscribers: one per channel of an accepted publish/broadcast, except the channels
    /// that dropped it as a repeat of an idempotency key seen within <see cref="StandInOptions.IdempotentResultTtl"/>.
    /// </summary>
    public long Publications => Interlocked.Read(ref _publications);

    /// <summary>Publications dropped as repeats of their idempotency key (answered like the first, not published).</summary>
    public long SuppressedPublications => Interlocked.Read(ref _suppressedPublications);

    /// <summary>Commands per request (1 for a per-method request, the count of a /batch), in arrival order; kept when
    /// <see cref="StandInOptions.RecordCommands"/>.</summary>
    public IReadOnlyList<int> RequestSizes
    {
        get
        {
            lock (_received)
            {
                return [.. _requestSizes];
            }
        }
    }

    /// <summary>Commands answered with an error (top level, or any per-channel error of a broadcast).</summary>
    public long RejectedCount => Interlocked.Read(ref _rejectedCount);

    /// <summary>Connections aborted by <see cref="DropNextConnections"/>.</summary>
    public long DroppedConnections => Interlocked.Read(ref _droppedConnections);

    /// <summary>Requests answered with <paramref name="status"/> so far.</summary>
    public long RequestsWithStatus(int status) => Interlocked.Read(ref _statusCounts[status]);

    /// <summary>Completes once <paramref name="count"/> commands were accepted; throws <see cref="TimeoutException"/> after
    /// <paramref name="timeout"/>.</summary>
    public async Task WaitForReceivedAsync(int count, TimeSpan timeout)
    {
        TaskCompletionSource done;
        lock (_received)
        {
            if (_receivedCount >= count)
            {
                return;
            }

            done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((count, done));
        }

        try
        {
            await done.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            lock (_received)
            {
                _waiters.RemoveAll(w => w.Done == done);
            }

            throw new TimeoutException($"the stand-in accepted {ReceivedCount} commands, expected {count} within {timeout}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _lifecycle.Dispose();
    }

    private async Task HandleAsync(HttpContext context)
    {
        var latency = Latency;
        if (latency > TimeSpan.Zero)
        {
            await Task.Delay(latency, context.RequestAborted);
        }

        if (TryTake(ref _dropConnections))
        {
            Interlocked.Increment(ref _droppedConnections);
            context.Abort();
            return;
        }

        var (injected, injectedBody) = TakeRequestFailure();
        if (injected != 0)
        {
            await WritePlainAsync(context, injected, injectedBody ?? Encoding.UTF8.GetBytes(ReasonPhrases.GetReasonPhrase(injected) + "\n"),
                injectedBody is null ? "text/plain; charset=utf-8" : "application/json");
            return;
        }

        var path = context.Request.Path.Value ?? "";
        var method = path.StartsWith(_options.Prefix + "/", StringComparison.Ordinal) ? path[(_options.Prefix.Length + 1)..] : null;
        var isBatch = method == "batch";
        if (method is null || (!isBatch && !StandInRequestDecoder.IsMethod(method)))
        {
            await WritePlainAsync(context, 404, NotFoundBody);
            return;
        }

        if (!HttpMethods.IsPost(context.Request.Method))
        {
            Count(405);
            context.Response.StatusCode = 405;
            return;
        }

        if (!Authorized(context.Request))
        {
            Count(401);
            context.Response.StatusCode = 401;
            return;
        }

        var (buffer, length) = await ReadBodyAsync(context.Request.BodyReader, context.RequestAborted);
        try
        {
            var body = buffer.AsSpan(0, length);
            var commands = new List<DecodedCommand>(isBatch ? 16 : 1);
            if (isBatch)
            {
                if (!StandInRequestDecoder.TryDecodeBatch(body, commands))
                {
                    await WritePlainAsync(context, 400, BadRequestBody);
                    return;
                }
            }
            else
            {
                if (!StandInRequestDecoder.TryDecodeSingle(method, body, out var single))
                {
                    await WritePlainAsync(context, 400, BadRequestBody);
                    return;
                }

                commands.Add(single);
            }

            RecordRequestSize(commands.Count);
            var output = new ArrayBufferWriter<byte>(256 + (commands.Count * 32));
            var onAccepted = _options.OnAccepted;
            var accepted = _options.RecordCommands ? new List<ReceivedCommand>(commands.Count) : null;
            var acceptedCount = 0;
            using (var writer = new Utf8JsonWriter(output, new JsonWriterOptions { SkipValidation = true }))
            {
                writer.WriteStartObject();
                if (isBatch)
                {
                    writer.WriteStartArray("replies"u8);
                }

                // Counted once per request, not per command: a shared counter is a cache line both cores fight over.
                Interlocked.Add(ref _commandsReceived, commands.Count);
                foreach (var command in commands)
                {
                    if (isBatch)
                    {
                        writer.WriteStartObject();
                    }

                    if (Execute(command, writer, isBatch, out var published))
                    {
                        acceptedCount++;
                        if (accepted is not null || onAccepted is not null)
                        {
                            var received = new ReceivedCommand(
                                0, command.Method, Encoding.UTF8.GetString(body.Slice(command.Start, command.Length)),
                                ChannelsOf(command), command.User) { IdempotencyKey = command.IdempotencyKey, Published = published };
                            accepted?.Add(received);
                            onAccepted?.Invoke(received);
                        }
                    }
                    else
                    {
                        Interlocked.Increment(ref _rejectedCount);
                    }

                    if (isBatch)
                    {
                        writer.WriteEndObject();
                    }
                }

                if (isBatch)
                {
                    writer.WriteEndArray();
                }

                writer.WriteEndObject();
            }

            Record(accepted, acceptedCount);
            if (_options.TransportErrorMode && !isBatch && acceptedCount == 0)
            {
                using var reply = JsonDocument.Parse(output.WrittenMemory);
                if (reply.RootElement.TryGetProperty("error"u8, out var error))
                {
                    var code = error.GetProperty("code"u8).GetInt32();
                    var status = code switch
                    {
                        102 or 104 => 404,
                        107 or 108 => 400,
                        112 => 416,
                        113 => 409,
                        _ => 500,
                    };
                    var errorBody = Encoding.UTF8.GetBytes(error.GetRawText());
                    Count(status);
                    context.Response.StatusCode = status;
                    context.Response.ContentType = "application/json";
                    context.Response.ContentLength = errorBody.Length;
                    await context.Response.Body.WriteAsync(errorBody, context.RequestAborted);
                    return;
                }
            }

            var responseDelay = ResponseDelay;
            if (responseDelay > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(responseDelay, context.RequestAborted);
                }
                catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
                {
                    // The client went away while waiting for the reply (e.g. killed): nothing to answer.
                    return;
                }
            }

            Count(200);
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/json";
            context.Response.ContentLength = output.WrittenCount;
            await context.Response.Body.WriteAsync(output.WrittenMemory, context.RequestAborted);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Executes one decoded command and writes its reply; true when it succeeded without any error.
    /// <paramref name="published"/>: channels a publish/broadcast reached subscribers on (not dropped by its idempotency key).
    /// </summary>
    private bool Execute(in DecodedCommand command, Utf8JsonWriter writer, bool inBatch, out int published)
    {
        published = 0;
        if (command.IsNull)
        {
            return WriteError(writer, 107);
        }

        if (command.Method.Length == 0)
        {
            return WriteError(writer, 104);
        }

        var injected = TakeCommandFailure();
        if (injected == 0 && TakeChannelFailure(command))
        {
            injected = 100;
        }

        if (injected == 0 && TakePeriodicFailure() is var periodic and not 0)
        {
            injected = periodic;
        }

        if (injected != 0)
        {
            return WriteError(writer, injected);
        }

        var error = Validate(command);
        if (error != 0)
        {
            return WriteError(writer, error);
        }

        writer.WritePropertyName(inBatch ? command.Method : "result");
        writer.WriteStartObject();
        var ok = true;
        switch (command.Method)
        {
            case "publish":
                published = Publish(command.Channel!, command.IdempotencyKey) ? 1 : 0;
                break;
            case "broadcast":
                ok = WriteBroadcastResponses(command.Channels!, command.IdempotencyKey, writer, out published);
                break;
            case "presence":
                writer.WriteStartObject("presence"u8);
                writer.WriteEndObject();
                break;
            case "presence_stats":
                writer.WriteNumber("num_clients"u8, 0);
                writer.WriteNumber("num_users"u8, 0);
                break;
            case "history":
                writer.WriteStartArray("publications"u8);
                writer.WriteEndArray();
                writer.WriteString("epoch"u8, "standin");
                break;
            case "info":
                writer.WriteStartArray("nodes"u8);
                writer.WriteStartObject();
                writer.WriteString("uid"u8, "standin");
                writer.WriteString("name"u8, "centrifugo-standin");
                writer.WriteString("version"u8, "6.9.1-standin");
                writer.WriteNumber("uptime"u8, (Environment.TickCount64 - _started) / 1000);
                writer.WriteEndObject();
                writer.WriteEndArray();
                break;
            case "channels":
                writer.WriteStartObject("channels"u8);
                writer.WriteEndObject();
                break;
        }

        writer.WriteEndObject();
        return ok;
    }

    private int Validate(in DecodedCommand command)
    {
        switch (command.Method)
        {
            case "publish":
                return string.IsNullOrEmpty(command.Channel) ? 107
                    : !KnownChannel(command.Channel) ? 102
                    : DataError(command);
            case "broadcast":
                return command.Channels is not { Count: > 0 } ? 107 : DataError(command);
            case "unsubscribe":
                return string.IsNullOrEmpty(command.Channel) || string.IsNullOrEmpty(command.User) ? 107
                    : !KnownChannel(command.Channel) ? 102 : 0;
            case "subscribe" or "history_remove" or "presence" or "presence_stats" or "history":
                return string.IsNullOrEmpty(command.Channel) ? 107 : !KnownChannel(command.Channel) ? 102 : 0;
            case "disconnect" or "refresh":
                return string.IsNullOrEmpty(command.User) ? 107 : 0;
            default:
                return 0;
        }
    }

    /// <summary>Default publication_data_format: data is required; b64data must be standard base64.</summary>
    private static int DataError(in DecodedCommand command)
    {
        if (!string.IsNullOrEmpty(command.B64Data))
        {
            return Base64.IsValid(command.B64Data) ? 0 : 107;
        }

        return command.HasData ? 0 : 107;
    }

    private bool WriteBroadcastResponses(List<string> channels, string? idempotencyKey, Utf8JsonWriter writer, out int published)
    {
        var failFirst = TryTake(ref _failBroadcastChannel);
        var ok = true;
        published = 0;
        writer.WriteStartArray("responses"u8);
        for (var i = 0; i < channels.Count; i++)
        {
            writer.WriteStartObject();
            var code = failFirst && i == 0 ? 100 : channels[i].Length == 0 ? 107 : !KnownChannel(channels[i]) ? 102 : 0;
            if (code == 0)
            {
                published += Publish(channels[i], idempotencyKey) ? 1 : 0;
                writer.WriteStartObject("result"u8);
                writer.WriteEndObject();
            }
            else
            {
                ok = false;
                WriteErrorObject(writer, code);
            }

            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        return ok;
    }

    private static bool WriteError(Utf8JsonWriter writer, int code)
    {
        WriteErrorObject(writer, code);
        return false;
    }

    private static void WriteErrorObject(Utf8JsonWriter writer, int code)
    {
        writer.WriteStartObject("error"u8);
        writer.WriteNumber("code"u8, code);
        writer.WriteString("message"u8, code switch
        {
            100 => "internal server error",
            101 => "unauthorized",
            102 => "unknown channel",
            103 => "permission denied",
            104 => "not found",
            105 => "method not found",
            106 => "already subscribed",
            107 => "bad request",
            108 => "not available",
            109 => "token expired",
            110 => "expired",
            111 => "too many requests",
            112 => "unrecoverable position",
            113 => "conflict",
            _ => "error",
        });
        writer.WriteEndObject();
    }

    private bool KnownChannel(string channel)
    {
        var colon = channel.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            return true;
        }

        var ns = channel[..colon];
        return _options.KnownNamespaces is { } known ? known.Contains(ns) : ns != "unknown";
    }

    private static IReadOnlyList<string> ChannelsOf(in DecodedCommand command) =>
        command.Channels is { } many ? many : command.Channel is { Length: > 0 } one ? [one] : [];

    private void Record(List<ReceivedCommand>? accepted, int acceptedCount)
    {
        if (acceptedCount == 0)
        {
            return;
        }

        lock (_received)
        {
            if (accepted is not null)
            {
                foreach (var command in accepted)
                {
                    _commands.Add(command with { Sequence = _commands.Count + 1 });
                }
            }

            _receivedCount += acceptedCount;
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Count <= _receivedCount)
                {
                    _waiters[i].Done.TrySetResult();
                    _waiters.RemoveAt(i);
                }
            }
        }
    }

    private bool Authorized(HttpRequest request)
    {
        if (_key.Length == 0)
        {
            return false;
        }

        // Centrifugo: a non-empty X-API-Key decides alone; otherwise "Authorization: apikey KEY";
        // if still invalid and there is a query string, ?api_key= gets a chance.
        var valid = false;
        var header = request.Headers["X-API-Key"].ToString();
        if (header.Length > 0)
        {
            valid = KeyEquals(header);
        }
        else
        {
            var authorization = request.Headers.Authorization.ToString();
            var parts = authorization.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            valid = parts.Length == 2 && parts[0].Equals("apikey", StringComparison.OrdinalIgnoreCase) && KeyEquals(parts[1]);
        }

        if (!valid && request.QueryString.HasValue)
        {
            valid = KeyEquals(request.Query["api_key"].ToString());
        }

        return valid;
    }

    private bool KeyEquals(string candidate) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(candidate), _key);

    private async Task WritePlainAsync(HttpContext context, int status, byte[] body, string contentType = "text/plain; charset=utf-8")
    {
        Count(status);
        context.Response.StatusCode = status;
        context.Response.ContentType = contentType;
        context.Response.Headers["X-Content-Type-Options"] = "nosniff";
        context.Response.ContentLength = body.Length;
        await context.Response.Body.WriteAsync(body, context.RequestAborted);
    }

    private static async Task<(byte[] Buffer, int Length)> ReadBodyAsync(PipeReader reader, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken);
            if (result.IsCompleted || result.IsCanceled)
            {
                var length = checked((int)result.Buffer.Length);
                var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
                result.Buffer.CopyTo(buffer);
                reader.AdvanceTo(result.Buffer.End);
                return (buffer, length);
            }

            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    private void Count(int status) => Interlocked.Increment(ref _statusCounts[status]);

    private void RecordRequestSize(int commands)
    {
        if (_options.RecordCommands)
        {
            lock (_received)
            {
                _requestSizes.Add(commands);
            }
        }
    }

    /// <summary>
    /// Publishes to <paramref name="channel"/> unless <paramref name="key"/> was published there within the retention
    /// window (centrifuge's idempotent result cache, per channel); true when it reached subscribers.
    /// </summary>
    private bool Publish(string channel, string? key)
    {
        if (!string.IsNullOrEmpty(key))
        {
            var now = Environment.TickCount64;
            lock (_idempotency)
            {
                if (_seenKeys.TryGetValue((channel, key), out var expires) && expires > now)
                {
                    Interlocked.Increment(ref _suppressedPublications);
                    return false;
                }

                if (_seenKeys.Count >= _sweepAt)
                {
                    foreach (var stale in _seenKeys.Where(e => e.Value <= now).Select(e => e.Key).ToList())
                    {
                        _seenKeys.Remove(stale);
                    }

                    _sweepAt = Math.Max(100_000, _seenKeys.Count * 2);
                }

                _seenKeys[(channel, key)] = now + (long)_options.IdempotentResultTtl.TotalMilliseconds;
            }
        }

        Interlocked.Increment(ref _publications);
        return true;
    }

    private int TakeCommandFailure()
    {
        if (Volatile.Read(ref _failOneIn) > 0)
        {
            lock (_faults)
            {
                if (_failOneIn > 0 && _failRandom.Next(_failOneIn) == 0)
                {
                    return _failOneInCode;
                }
            }
        }

        if (Volatile.Read(ref _failNext) == 0)
        {
            return 0;
        }

        lock (_faults)
        {
            if (_failNext == 0)
            {
                return 0;
            }

            if (_failNextSkip > 0)
            {
                _failNextSkip--;
                return 0;
            }

            _failNext--;
            return _failNextCode;
        }
    }

    private int TakePeriodicFailure()
    {
        var period = Interlocked.Read(ref _failEvery);
        if (period <= 0 || Interlocked.Increment(ref _failEveryCounter) % period != 0)
        {
            return 0;
        }

        Interlocked.Increment(ref _failEveryInjected);
        return (int)Interlocked.Read(ref _failEveryCode);
    }

    private (int Status, byte[]? Body) TakeRequestFailure()
    {
        if (Volatile.Read(ref _failRequests) == 0)
        {
            return (0, null);
        }

        lock (_faults)
        {
            if (_failRequests == 0)
            {
                return (0, null);
            }

            _failRequests--;
            return (_failRequestsStatus, _failRequestsBody);
        }
    }

    private bool TakeChannelFailure(in DecodedCommand command)
    {
        if (!_anyChannelFailures)
        {
            return false;
        }

        lock (_faults)
        {
            if (_failChannels.Count == 0)
            {
                return false;
            }

            foreach (var channel in ChannelsOf(command))
            {
                if (_failChannels.TryGetValue(channel, out var left) && left > 0)
                {
                    _failChannels[channel] = left - 1;
                    return true;
                }
            }

            return false;
        }
    }

    private static bool TryTake(ref int counter)
    {
        while (true)
        {
            var current = Volatile.Read(ref counter);
            if (current <= 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref counter, current - 1, current) == current)
            {
                return true;
            }
        }
    }
}
