namespace Centrifugo.Actors.Delivery;

/// <summary>Result of turning a source message into a command: either a command or a reason to dead-letter it.</summary>
internal readonly record struct DecodeResult(ApiCommand? Command, string? RejectReason)
{
    public static DecodeResult Ok(ApiCommand command) => new(command, null);
    public static DecodeResult Reject(string reason) => new(null, reason);
}

/// <summary>
/// Command mode decoding (spec §1.3). STUB: implemented by the delivery work package.
/// </summary>
internal static class CommandDecoder
{
    /// <summary>
    /// <paramref name="method"/> given out of band (column/header) ⇒ body is the request JSON verbatim;
    /// null/empty ⇒ body must be the {"method","payload"} envelope (payload object, or a JSON string holding JSON).
    /// Only the 7 accepted methods yield a command; anything else is rejected with a reason naming the method.
    /// </summary>
    public static DecodeResult Decode(string? method, ReadOnlyMemory<byte> body) => throw new NotImplementedException();
}
