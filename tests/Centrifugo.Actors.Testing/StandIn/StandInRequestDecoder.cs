using System.Text;
using System.Text.Json;

namespace Centrifugo.Actors.Testing.StandIn;

/// <summary>
/// Decodes server-API requests the way Centrifugo's Go encoding/json does into the §5 structs: unknown fields are
/// ignored, field names match case-insensitively, null leaves a field unset, and a wrong JSON type anywhere is a
/// decode error (→ 400 "Bad Request"). Only the fields the stand-in acts on are extracted.
/// </summary>
internal static class StandInRequestDecoder
{
    private enum Kind { String, Bool, UInt64, Int64, UInt32, Int32, Raw, StringMap, StringArray, Object }

    private enum Role { None, Channel, Channels, User, Data, B64Data, IdempotencyKey }

    private sealed record Field(string Name, Kind Kind, Role Role = Role.None, Field[]? Nested = null)
    {
        public readonly byte[] Utf8 = Encoding.UTF8.GetBytes(Name);
    }

    private static readonly Field[] BoolValue = [new("value", Kind.Bool)];
    private static readonly Field[] StreamPosition = [new("offset", Kind.UInt64), new("epoch", Kind.String)];

    private static readonly Field[] PublishLike =
    [
        new("data", Kind.Raw, Role.Data), new("b64data", Kind.String, Role.B64Data), new("skip_history", Kind.Bool),
        new("tags", Kind.StringMap), new("idempotency_key", Kind.String, Role.IdempotencyKey), new("delta", Kind.Bool),
        new("version", Kind.UInt64), new("version_epoch", Kind.String),
    ];

    private static readonly Field[] Targeting =
    [
        new("client", Kind.String), new("session", Kind.String), new("label_filter", Kind.Raw), new("all_users", Kind.Bool),
    ];

    /// <summary>Methods in the order Go's batch dispatch checks a command's fields ("first set wins").</summary>
    public static readonly IReadOnlyList<string> MethodOrder =
    [
        "publish", "broadcast", "subscribe", "unsubscribe", "disconnect", "presence", "presence_stats", "history",
        "history_remove", "info", "rpc", "refresh", "channels",
    ];

    private static readonly byte[][] MethodOrderUtf8 = MethodOrder.Select(Encoding.UTF8.GetBytes).ToArray();

    private static readonly Dictionary<string, Field[]> Schemas = new(StringComparer.Ordinal)
    {
        ["publish"] = [new("channel", Kind.String, Role.Channel), .. PublishLike],
        ["broadcast"] = [new("channels", Kind.StringArray, Role.Channels), .. PublishLike],
        ["subscribe"] =
        [
            new("channel", Kind.String, Role.Channel), new("user", Kind.String, Role.User), new("expire_at", Kind.Int64),
            new("info", Kind.Raw), new("b64info", Kind.String), new("data", Kind.Raw), new("b64data", Kind.String),
            new("recover_since", Kind.Object, Nested: StreamPosition),
            new("override", Kind.Object, Nested:
            [
                new("presence", Kind.Object, Nested: BoolValue), new("join_leave", Kind.Object, Nested: BoolValue),
                new("force_recovery", Kind.Object, Nested: BoolValue), new("force_positioning", Kind.Object, Nested: BoolValue),
                new("force_push_join_leave", Kind.Object, Nested: BoolValue),
            ]),
            .. Targeting,
        ],
        ["unsubscribe"] = [new("channel", Kind.String, Role.Channel), new("user", Kind.String, Role.User), .. Targeting],
        ["disconnect"] =
        [
            new("user", Kind.String, Role.User),
            new("disconnect", Kind.Object, Nested: [new("code", Kind.UInt32), new("reason", Kind.String)]),
            new("whitelist", Kind.StringArray), .. Targeting,
        ],
        ["refresh"] =
        [
            new("user", Kind.String, Role.User), new("expired", Kind.Bool), new("expire_at", Kind.Int64),
            new("info", Kind.Raw), .. Targeting,
        ],
        ["history_remove"] = [new("channel", Kind.String, Role.Channel)],
        ["presence"] = [new("channel", Kind.String, Role.Channel)],
        ["presence_stats"] = [new("channel", Kind.String, Role.Channel)],
        ["history"] =
        [
            new("channel", Kind.String, Role.Channel), new("limit", Kind.Int32),
            new("since", Kind.Object, Nested: StreamPosition), new("reverse", Kind.Bool),
        ],
        ["info"] = [],
        ["rpc"] = [new("method", Kind.String), new("params", Kind.Raw)],
        ["channels"] = [new("pattern", Kind.String)],
    };

    public static bool IsMethod(string method) => Schemas.ContainsKey(method);

    /// <summary>Decodes the body of POST /{method}; false = 400 Bad Request.</summary>
    public static bool TryDecodeSingle(string method, ReadOnlySpan<byte> body, out DecodedCommand command)
    {
        command = new DecodedCommand { Method = method, Start = 0, Length = body.Length };
        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 10_000 });
            if (!reader.Read())
            {
                return false;
            }

            if (reader.TokenType == JsonTokenType.StartObject)
            {
                if (!DecodeObject(ref reader, Schemas[method], ref command, top: true))
                {
                    return false;
                }
            }
            else if (reader.TokenType != JsonTokenType.Null)
            {
                return false;
            }

            return !reader.Read();
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>Decodes a /batch body; false = 400 Bad Request for the whole batch (Go fails the whole Unmarshal).</summary>
    public static bool TryDecodeBatch(ReadOnlySpan<byte> body, List<DecodedCommand> commands)
    {
        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 10_000 });
            if (!reader.Read())
            {
                return false;
            }

            if (reader.TokenType == JsonTokenType.Null)
            {
                return !reader.Read();
            }

            if (reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isCommands = Ascii.EqualsIgnoreCase(Name(ref reader), "commands"u8);
                var isParallel = !isCommands && Ascii.EqualsIgnoreCase(Name(ref reader), "parallel"u8);
                reader.Read();
                if (isCommands)
                {
                    if (reader.TokenType == JsonTokenType.Null)
                    {
                        commands.Clear();
                        continue;
                    }

                    if (reader.TokenType != JsonTokenType.StartArray)
                    {
                        return false;
                    }

                    commands.Clear();
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        if (!TryDecodeBatchCommand(ref reader, out var command))
                        {
                            return false;
                        }

                        commands.Add(command);
                    }
                }
                else if (isParallel)
                {
                    if (reader.TokenType is not (JsonTokenType.True or JsonTokenType.False or JsonTokenType.Null))
                    {
                        return false;
                    }
                }
                else
                {
                    reader.Skip();
                }
            }

            return !reader.Read();
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static bool TryDecodeBatchCommand(ref Utf8JsonReader reader, out DecodedCommand command)
    {
        command = new DecodedCommand { Method = "", Order = int.MaxValue };
        if (reader.TokenType == JsonTokenType.Null)
        {
            command.IsNull = true;
            return true;
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            return false;
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var order = -1;
            var name = Name(ref reader);
            for (var i = 0; i < MethodOrderUtf8.Length; i++)
            {
                if (Ascii.EqualsIgnoreCase(name, MethodOrderUtf8[i]))
                {
                    order = i;
                    break;
                }
            }

            reader.Read();
            if (order < 0 || reader.TokenType == JsonTokenType.Null)
            {
                reader.Skip();
                continue;
            }

            if (reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            var method = MethodOrder[order];
            var candidate = new DecodedCommand { Method = method, Order = order, Start = (int)reader.TokenStartIndex };
            if (!DecodeObject(ref reader, Schemas[method], ref candidate, top: true))
            {
                return false;
            }

            candidate.Length = (int)reader.BytesConsumed - candidate.Start;
            if (order <= command.Order)
            {
                command = candidate;
            }
        }

        return true;
    }

    private static ReadOnlySpan<byte> Name(ref Utf8JsonReader reader)
    {
        if (!reader.ValueIsEscaped && !reader.HasValueSequence)
        {
            return reader.ValueSpan;
        }

        try
        {
            return Encoding.UTF8.GetBytes(reader.GetString()!);
        }
        catch (InvalidOperationException)
        {
            // A lone surrogate escape or invalid UTF-8: Go reads it as U+FFFD, so the name matches no field.
            return "\uFFFD"u8;
        }
    }

    private static bool DecodeObject(ref Utf8JsonReader reader, Field[] schema, ref DecodedCommand command, bool top)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            Field? field = null;
            var name = Name(ref reader);
            foreach (var candidate in schema)
            {
                if (Ascii.EqualsIgnoreCase(name, candidate.Utf8))
                {
                    field = candidate;
                    break;
                }
            }

            reader.Read();
            if (field is null)
            {
                reader.Skip();
            }
            else if (!DecodeValue(ref reader, field, ref command, top))
            {
                return false;
            }
        }

        return true;
    }

    private static bool DecodeValue(ref Utf8JsonReader reader, Field field, ref DecodedCommand command, bool top)
    {
        var role = top ? field.Role : Role.None;
        if (reader.TokenType == JsonTokenType.Null)
        {
            if (role == Role.Data)
            {
                command.HasData = true; // Raw keeps the literal "null"
            }
            else if (role == Role.Channels)
            {
                command.Channels = null;
            }

            return true;
        }

        switch (field.Kind)
        {
            case Kind.String:
                if (reader.TokenType != JsonTokenType.String)
                {
                    return false;
                }

                switch (role)
                {
                    case Role.Channel:
                        command.Channel = reader.GetString();
                        break;
                    case Role.User:
                        command.User = reader.GetString();
                        break;
                    case Role.B64Data:
                        command.B64Data = reader.GetString();
                        break;
                    case Role.IdempotencyKey:
                        command.IdempotencyKey = reader.GetString();
                        break;
                }

                return true;
            case Kind.Bool:
                return reader.TokenType is JsonTokenType.True or JsonTokenType.False;
            case Kind.UInt64:
                return reader.TokenType == JsonTokenType.Number && reader.TryGetUInt64(out _);
            case Kind.Int64:
                return reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out _);
            case Kind.UInt32:
                return reader.TokenType == JsonTokenType.Number && reader.TryGetUInt32(out _);
            case Kind.Int32:
                return reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out _);
            case Kind.Raw:
                if (role == Role.Data)
                {
                    command.HasData = true;
                }

                reader.Skip();
                return true;
            case Kind.StringMap:
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    return false;
                }

                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    reader.Read();
                    if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.Null))
                    {
                        return false;
                    }
                }

                return true;
            case Kind.StringArray:
                if (reader.TokenType != JsonTokenType.StartArray)
                {
                    return false;
                }

                List<string>? values = role == Role.Channels ? [] : null;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.Null))
                    {
                        return false;
                    }

                    values?.Add(reader.TokenType == JsonTokenType.Null ? "" : reader.GetString()!);
                }

                if (values is not null)
                {
                    command.Channels = values;
                }

                return true;
            case Kind.Object:
                return reader.TokenType == JsonTokenType.StartObject
                    && DecodeObject(ref reader, field.Nested!, ref command, top: false);
            default:
                return false;
        }
    }
}

/// <summary>One decoded command of a request, with the fields the stand-in acts on.</summary>
internal struct DecodedCommand
{
    /// <summary>"" when a batch command set no known method (→ 104).</summary>
    public string Method;
    public int Order;
    /// <summary>Range of the request JSON inside the body.</summary>
    public int Start;
    public int Length;
    /// <summary>A JSON null element inside a batch (→ 107).</summary>
    public bool IsNull;
    public string? Channel;
    public List<string>? Channels;
    public string? User;
    public bool HasData;
    public string? B64Data;
    /// <summary>publish/broadcast: idempotency_key (last duplicate wins, null leaves it unset, like Go).</summary>
    public string? IdempotencyKey;
}
