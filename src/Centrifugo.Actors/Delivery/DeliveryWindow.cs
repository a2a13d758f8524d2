namespace Centrifugo.Actors.Delivery;

/// <summary>
/// How many commands of one partition go into one request to Centrifugo, adapted to its errors. Centrifugo runs a
/// whole /batch even after a command failed in it, so after a temporary failure the commands behind the failed one
/// were applied and are sent again with it: the window halves (down to 1) at each temporary failure, since errors
/// cluster, and doubles back (up to api.max_batch_size) after each request that went through, so a partition is back
/// at full batches a few requests after its errors stop. One per partition; used by one delivery at a time.
/// </summary>
internal sealed class DeliveryWindow
{
    private int _limit = int.MaxValue;

    /// <summary>The most commands the next request may carry (int.MaxValue = no limit of its own).</summary>
    public int Limit => Volatile.Read(ref _limit);

    /// <summary>A request went through without a temporary failure; <paramref name="max"/> is api.max_batch_size.</summary>
    public void Succeeded(int max)
    {
        var limit = Limit;
        if (limit < max)
        {
            Volatile.Write(ref _limit, (int)Math.Min(max, limit * 2L));
        }
    }

    /// <summary>A request of <paramref name="size"/> commands ended with a temporary failure.</summary>
    public void Failed(int size) => Volatile.Write(ref _limit, Math.Max(1, Math.Min(size, Limit) / 2));
}
